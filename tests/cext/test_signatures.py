"""The C functions carry text signatures equal to the cffi backend's Python
signatures: both backends define one API, and a stub written from the cffi
signatures (ca.pyi) must describe the C extension as well."""
from __future__ import annotations

import inspect

import pytest

_ca = pytest.importorskip("CaChannel._ca", reason="the C extension is not built")
from CaChannel import _cffi  # noqa: E402


def _params(obj, drop_self=False):
    """(name, kind, default) of every parameter, or the exception type when
    inspect cannot read a signature."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError) as exc:
        return type(exc).__name__
    params = list(sig.parameters.values())
    if drop_self:
        # a method descriptor's $self is positional-only, a Python method's
        # self is not; how self is passed is not part of the API
        assert params and params[0].name == "self", params
        params = params[1:]
    return [(p.name, p.kind, p.default) for p in params]


def _own_callables():
    """The callables of __all__ each backend defines itself (constants,
    enums and helpers of _common are the same objects in both)."""
    names = []
    for name in _ca.__all__:
        c_obj, f_obj = getattr(_ca, name), getattr(_cffi, name)
        if (callable(c_obj) or callable(f_obj)) and c_obj is not f_obj:
            names.append(name)
    return names


def test_same_names():
    assert _ca.__all__ == _cffi.__all__


def test_the_backend_functions_are_compared():
    own = _own_callables()
    # guard against a comparison that silently checks nothing
    assert {"get", "put", "create_channel", "create_subscription", "sg_get",
            "pend_io", "message", "DBRValue"} <= set(own), own


@pytest.mark.parametrize("name", [n for n in _own_callables() if n != "DBRValue"])
def test_function_signature(name):
    c_params = _params(getattr(_ca, name))
    assert isinstance(c_params, list), "inspect.signature(_ca.%s) failed: %s" % (name, c_params)
    assert c_params == _params(getattr(_cffi, name))


def test_dbrvalue_methods():
    # DBRValue instances come from get/sg_get only; its constructor is not API
    # (the C type cannot be instantiated from Python at all)
    with pytest.raises(TypeError):
        _ca.DBRValue()
    public = sorted(n for n, v in vars(_cffi.DBRValue).items()
                    if not n.startswith("_") and inspect.isfunction(v))
    assert public, "no public methods found on the cffi DBRValue"
    for n in public:
        assert _params(getattr(_ca.DBRValue, n), True) == \
            _params(getattr(_cffi.DBRValue, n), True), n


@pytest.mark.parametrize("name", sorted(_own_callables()))
def test_unknown_keyword(name):
    # keyword binding is real in C, not only in the text signature
    with pytest.raises(TypeError):
        getattr(_ca, name)(no_such_parameter=1)


# calls without side effects, every argument given by name as the signatures
# allow (gid 123456: a group never created; out-of-range gids give
# ECA_BADSYNCGRP in both backends, checked in test_rule_parity.py)
_BY_NAME = [
    ("message", {"status": 1}),
    ("state", {"chid": None}),
    ("name", {"chid": None}),
    ("element_count", {"chid": None}),
    ("field_type", {"chid": None}),
    ("host_name", {"chid": None}),
    ("read_access", {"chid": None}),
    ("write_access", {"chid": None}),
    ("clear_channel", {"chid": None}),
    ("clear_subscription", {"evid": None}),
    ("get", {"chid": None, "chtype": None, "count": None, "callback": None,
             "use_numpy": False, "out": None}),
    ("put", {"chid": None, "value": 1, "chtype": None, "count": None, "callback": None}),
    ("create_subscription", {"chid": None, "callback": print, "chtype": None,
                             "count": None, "mask": None, "use_numpy": False}),
    ("change_connection_event", {"chid": None, "callback": None}),
    ("replace_access_rights_event", {"chid": None, "callback": None}),
    ("pend_io", {"timeout": -1}),
    ("pend_event", {"timeout": -1}),
    ("pend", {"timeout": -1, "early": True}),
    ("sg_test", {"gid": 123456}),
    ("sg_reset", {"gid": 123456}),
    ("sg_delete", {"gid": 123456}),
    ("sg_block", {"gid": 123456, "timeout": 0.001}),
    ("sg_get", {"gid": 123456, "chid": None, "chtype": None, "count": None, "use_numpy": False}),
    ("sg_put", {"gid": 123456, "chid": None, "value": 1, "chtype": None, "count": None}),
    ("attach_context", {"context": object()}),
]


def _outcome(func, kwargs):
    try:
        return "ok", func(**kwargs)
    except TypeError as exc:
        # a binding error would name an argument; a type check names the type
        assert "argument" not in str(exc), exc
        return "raised", TypeError
    except Exception as exc:  # noqa: BLE001 - the type is what is compared
        return "raised", type(exc)


@pytest.mark.parametrize("name,kwargs", _BY_NAME, ids=[n for n, _ in _BY_NAME])
def test_call_by_name(name, kwargs):
    assert _outcome(getattr(_ca, name), kwargs) == _outcome(getattr(_cffi, name), kwargs)
