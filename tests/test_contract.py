"""The written contract of the low-level API: ``src/CaChannel/ca.pyi``.

The stub is parsed with ``ast`` (not imported) and compared with both
backends, each imported directly (``CaChannel._cffi`` always,
``CaChannel._ca`` when it is built):

- every backend exports exactly the names of the stub's ``__all__``;
- constants have the stub's values, enum classes the stub's members (aliases
  included) and methods, ``DBRValue`` the stub's attributes;
- every function takes the stub's parameters: names, kinds and defaults equal
  ``inspect.signature`` of the cffi backend and of the C extension (every C
  function carries a text signature; ``C_WITHOUT_SIGNATURE`` is empty and
  must stay so).
"""
from __future__ import annotations

import ast
import enum
import importlib
import inspect
import os
import warnings
from typing import Any, Dict, List, Tuple

import pytest

import CaChannel

STUB = os.path.join(os.path.dirname(CaChannel.__file__), "ca.pyi")

#: C functions allowed (for now) to have no text signature. Tighten this as
#: the C extension gains them: remove names, and finally the whole list.
C_WITHOUT_SIGNATURE: frozenset = frozenset()

_KIND = {
    "posonly": inspect.Parameter.POSITIONAL_ONLY,
    "arg": inspect.Parameter.POSITIONAL_OR_KEYWORD,
    "vararg": inspect.Parameter.VAR_POSITIONAL,
    "kwonly": inspect.Parameter.KEYWORD_ONLY,
    "kwarg": inspect.Parameter.VAR_KEYWORD,
}
_NO_DEFAULT = inspect.Parameter.empty


class Stub:
    """What ca.pyi declares, read from its syntax tree."""

    def __init__(self, path: str) -> None:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        self.all: List[str] = []
        self.functions: Dict[str, List[Tuple[str, Any, Any]]] = {}
        self.classes: Dict[str, ast.ClassDef] = {}
        self.constants: Dict[str, Any] = {}     # name -> value (Final) or None
        self.annotations: Dict[str, str] = {}
        for node in tree.body:
            if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["__all__"]:
                self.all = ast.literal_eval(node.value)
            elif isinstance(node, ast.FunctionDef):
                self.functions[node.name] = self._params(node.args)
            elif isinstance(node, ast.ClassDef):
                self.classes[node.name] = node
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                name = node.target.id
                self.annotations[name] = ast.unparse(node.annotation)
                self.constants[name] = (ast.literal_eval(node.value)
                                        if node.value is not None else None)
            elif isinstance(node, ast.Assign):   # type aliases such as _Callback
                pass

    @staticmethod
    def _params(args: ast.arguments) -> List[Tuple[str, Any, Any]]:
        """[(name, kind, default)] in order, like inspect.signature."""
        positional = [("posonly", a) for a in args.posonlyargs] + [("arg", a) for a in args.args]
        defaults: List[Any] = [_NO_DEFAULT] * (len(positional) - len(args.defaults)) + [
            ast.literal_eval(d) for d in args.defaults]
        out = [(a.arg, _KIND[k], d) for (k, a), d in zip(positional, defaults)]
        if args.vararg:
            out.append((args.vararg.arg, _KIND["vararg"], _NO_DEFAULT))
        for a, d in zip(args.kwonlyargs, args.kw_defaults):
            out.append((a.arg, _KIND["kwonly"], _NO_DEFAULT if d is None else ast.literal_eval(d)))
        if args.kwarg:
            out.append((args.kwarg.arg, _KIND["kwarg"], _NO_DEFAULT))
        return out

    def class_members(self, name: str) -> Dict[str, int]:
        return {t.id: ast.literal_eval(n.value)
                for n in self.classes[name].body if isinstance(n, ast.Assign)
                for t in n.targets if isinstance(t, ast.Name)}

    def class_functions(self, name: str) -> List[str]:
        return [n.name for n in self.classes[name].body if isinstance(n, ast.FunctionDef)]

    def class_attributes(self, name: str) -> List[str]:
        return [n.target.id for n in self.classes[name].body
                if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)]


STUB_INFO = Stub(STUB)


def _backend(modname: str):
    if modname == "_ca":
        try:
            return importlib.import_module("CaChannel._ca")
        except ImportError as exc:
            pytest.skip("the C extension is not built: %s" % exc)
    return importlib.import_module("CaChannel." + modname)


BACKENDS = ["_cffi", "_ca"]


def _signature_of(obj) -> List[Tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(obj).parameters.values()]


def test_stub_is_self_consistent():
    """Every public name the stub defines is in its __all__ and vice versa."""
    defined = set(STUB_INFO.functions) | set(STUB_INFO.classes) | set(STUB_INFO.constants)
    public = {n for n in defined if not n.startswith("_")}
    assert sorted(STUB_INFO.all) == sorted(set(STUB_INFO.all)), "duplicates in __all__"
    assert set(STUB_INFO.all) == public, (
        "in __all__ but not defined: %s; defined but not in __all__: %s"
        % (sorted(set(STUB_INFO.all) - public), sorted(public - set(STUB_INFO.all))))


def test_ca_module_exports_the_stub():
    """CaChannel.ca (whichever backend is active) has exactly the stub's names."""
    from CaChannel import ca
    assert sorted(ca.__all__) == sorted(STUB_INFO.all)
    missing = [n for n in STUB_INFO.all if not hasattr(ca, n)]
    assert not missing


@pytest.mark.parametrize("modname", BACKENDS)
def test_backend_exports_exactly_the_stub_names(modname):
    mod = _backend(modname)
    extra = sorted(set(mod.__all__) - set(STUB_INFO.all))
    missing = sorted(set(STUB_INFO.all) - set(mod.__all__))
    assert not extra and not missing, (
        "%s exports names the stub lacks: %s; and lacks stub names: %s" % (modname, extra, missing))
    assert [n for n in STUB_INFO.all if not hasattr(mod, n)] == []


@pytest.mark.parametrize("modname", BACKENDS)
def test_backend_constants_match_the_stub(modname):
    mod = _backend(modname)
    kinds = {"bool": bool, "str": str, "Tuple[str, ...]": tuple}
    for name, value in STUB_INFO.constants.items():
        if name.startswith("_"):   # ca.py's own (``_impl``, the backend module)
            continue
        actual = getattr(mod, name)
        annotation = STUB_INFO.annotations[name]
        if annotation == "Final":
            assert type(actual) is int and actual == value, (name, actual, value)
        else:
            assert isinstance(actual, kinds[annotation]), (name, type(actual), annotation)


@pytest.mark.parametrize("modname", BACKENDS)
def test_backend_classes_match_the_stub(modname):
    mod = _backend(modname)
    for name in STUB_INFO.classes:
        if name.startswith("_"):
            continue
        cls = getattr(mod, name)
        assert inspect.isclass(cls), name
        members = STUB_INFO.class_members(name)
        if issubclass(cls, enum.Enum):
            assert issubclass(cls, enum.IntEnum), name
            assert {k: int(v) for k, v in cls.__members__.items()} == members, name
        for attr in STUB_INFO.class_functions(name) + STUB_INFO.class_attributes(name):
            assert hasattr(cls, attr), "%s.%s.%s is in the stub but missing" % (modname, name, attr)


def test_cffi_signatures_match_the_stub():
    mod = _backend("_cffi")
    wrong = {}
    for name, params in STUB_INFO.functions.items():
        if name.startswith("_"):
            continue
        actual = _signature_of(getattr(mod, name))
        if actual != params:
            wrong[name] = (actual, params)
    assert not wrong, "cffi signatures differ from ca.pyi (actual, stub): %r" % (wrong,)


def test_c_signatures_match_the_stub():
    """Where the C extension has a text signature it must equal the stub's;
    a C function without one must be listed in C_WITHOUT_SIGNATURE."""
    mod = _backend("_ca")
    wrong, lacking = {}, []
    for name, params in STUB_INFO.functions.items():
        if name.startswith("_"):
            continue
        try:
            actual = _signature_of(getattr(mod, name))
        except (ValueError, TypeError):
            lacking.append(name)
            continue
        if actual != params:
            wrong[name] = (actual, params)
    assert not wrong, "C signatures differ from ca.pyi (actual, stub): %r" % (wrong,)
    unlisted = sorted(set(lacking) - C_WITHOUT_SIGNATURE)
    assert not unlisted, "C functions without a text signature: %s" % unlisted
    if lacking:
        warnings.warn("%d C functions still lack a text signature: %s"
                      % (len(lacking), ", ".join(sorted(lacking))), UserWarning)
    stale = sorted(C_WITHOUT_SIGNATURE - set(lacking))
    if stale:
        warnings.warn("C_WITHOUT_SIGNATURE can drop (they have signatures now): %s"
                      % ", ".join(stale), UserWarning)
