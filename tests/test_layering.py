"""The package's layering, checked by reading its source (no import).

* No module uses another module's private (``_name``) names: neither
  ``from .x import _name`` nor ``x._name`` / ``Name._attr`` on a name imported
  from another module of the package -- except the short allow-list below,
  each entry with its reason.
* A face does not import another face: faces reach each other's users only
  through the channel core (``CaChannel.core``), the low-level ``ca`` and the
  shared rules (``_common``, ``_convert``), and the delivery layer
  (``monitor``) that sits between the core and the faces.
* Only the core creates and clears libca channels (``ca.create_channel``,
  ``ca.clear_channel``), except the modules allowed below.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import pytest


# backend independent: the default pass runs it, the caffi pass skips it
pytestmark = pytest.mark.once

PKG = Path(__file__).resolve().parent.parent / "src" / "CaChannel"

#: (module, name used) -> why it may use another module's private name.
#: (Private names that ca.pyi declares -- the handle types ``ca._Chid``,
#: ``ca._Evid``, ``ca._Context`` and the ring API ``ca._Ring``,
#: ``ca._ring_subscribe`` -- are part of the contract that
#: tests/test_contract.py checks on both backends: any module may use them.)
PRIVATE_ALLOWED: Dict[Tuple[str, str], str] = {}


def _declared_in_stub() -> Set[str]:
    tree = ast.parse((PKG / "ca.pyi").read_text()) if (PKG / "ca.pyi").exists() else ast.Module([], [])
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return {"ca." + n for n in names if n.startswith("_")}

#: face -> its modules (prefix match on the dotted name)
FACES = {
    "3.x": ("CaChannel._channel", "CaChannel.util", "CaChannel._listops", "CaChannel.epicsPV",
            "CaChannel.epicsMotor"),
    "pyepics": ("CaChannel.pv", "CaChannel.ophyd"),
    "aio": ("CaChannel.aio",),
}
#: layers every face may use
SHARED = ("CaChannel.core", "CaChannel.ca", "CaChannel._common", "CaChannel._convert",
          "CaChannel._libca", "CaChannel._version", "CaChannel._ring", "CaChannel._repeater")
DELIVERY = ("CaChannel.monitor", "CaChannel._delivery", "CaChannel.areadetector")
#: applications on top of everything: they may import any face
APPS = ("CaChannel.demo", "CaChannel.cli", "CaChannel.__main__", "CaChannel.testing",
        "CaChannel.__init__")

#: modules that may create/clear libca channels themselves, and why
RAW_CHANNELS_ALLOWED = {
    "CaChannel.core.channel": "the core owns the channels",
    "CaChannel.cli": "the command-line tools stay on the raw ca API (one short-lived process each)",
    "CaChannel.demo": "the tour shows users the low-level ca API (README's tour)",
    "CaChannel.demo.adsim": "the simulated detector writes from a CA context of its own, "
                            "standing in for the IOC side",
}


def _modules() -> Iterator[Tuple[str, Path]]:
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1] if len(parts) > 1 else parts
        yield ".".join(parts), path


def _resolve(module: str, is_pkg: bool, level: int, name: str) -> str:
    """The absolute dotted name of a relative import."""
    if level == 0:
        return name
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _group(module: str) -> str:
    if module == "CaChannel":
        return "app"   # the package facade re-exports the faces
    for face, prefixes in FACES.items():
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return face
    for kind, prefixes in (("shared", SHARED), ("delivery", DELIVERY), ("app", APPS)):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return kind
    return "unknown"


def _scan() -> Tuple[List[str], List[str], List[str]]:
    private, crossing, raw = [], [], []
    declared = _declared_in_stub()
    for module, path in _modules():
        tree = ast.parse(path.read_text(), str(path))
        is_pkg = path.name == "__init__.py"
        imported: Dict[str, str] = {}   # local name -> absolute module or module.attr
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                src = _resolve(module, is_pkg, node.level, node.module or "")
                if not src.startswith("CaChannel"):
                    continue
                for alias in node.names:
                    target = src + "." + alias.name
                    imported[alias.asname or alias.name] = target
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        # importing a private *module* of the package is fine
                        if not (PKG.parent / (target.replace(".", "/") + ".py")).exists() and \
                                not (PKG.parent / target.replace(".", "/")).is_dir():
                            used = "%s.%s" % (src.rsplit(".", 1)[-1], alias.name)
                            if (module, used) not in PRIVATE_ALLOWED:
                                private.append("%s: from %s import %s" % (module, src, alias.name))
                    _check_crossing(module, target, crossing)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("CaChannel"):
                        imported[alias.asname or alias.name] = alias.name
                        _check_crossing(module, alias.name, crossing)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                base = node.value.id
                attr = node.attr
                if base in imported and attr.startswith("_") and not attr.startswith("__"):
                    used = "%s.%s" % (base, attr)
                    if (module, used) not in PRIVATE_ALLOWED and not (
                            imported[base] == "CaChannel.ca" and used in declared):
                        private.append("%s: %s (%s)" % (module, used, imported[base]))
                if base in imported and imported[base] in ("CaChannel.ca",) and attr in (
                        "create_channel", "clear_channel") and module not in RAW_CHANNELS_ALLOWED:
                    raw.append("%s: ca.%s" % (module, attr))
    return private, crossing, raw


def _check_crossing(module: str, target: str, out: List[str]) -> None:
    mine, theirs = _group(module), _group(target)
    if mine in FACES and theirs in FACES and mine != theirs:
        out.append("%s (%s) imports %s (%s)" % (module, mine, target, theirs))
    if mine in ("shared", "delivery") and theirs in FACES:
        out.append("%s (%s layer) imports the face %s" % (module, mine, target))
    if mine == "shared" and theirs == "delivery":
        out.append("%s (shared layer) imports %s (delivery)" % (module, target))


@pytest.fixture(scope="module")
def scan():
    return _scan()


def test_no_module_uses_another_modules_private_names(scan):
    private, _, _ = scan
    assert not private, "private names used across modules:\n  " + "\n  ".join(private)


def test_no_face_imports_another_face(scan):
    _, crossing, _ = scan
    assert not crossing, "layering broken:\n  " + "\n  ".join(crossing)


def test_only_the_core_creates_channels(scan):
    _, _, raw = scan
    assert not raw, "libca channels made outside the core:\n  " + "\n  ".join(raw)


def test_every_module_has_a_layer():
    unknown = [m for m, _ in _modules() if _group(m) == "unknown"]
    assert not unknown, "modules in no layer (add them to FACES/SHARED/DELIVERY/APPS): %s" % unknown


def test_the_checker_catches_a_private_use(tmp_path, monkeypatch):
    """The scan itself: a module importing another's private name is reported."""
    fake = tmp_path / "CaChannel"
    (fake / "core").mkdir(parents=True)
    (fake / "core" / "__init__.py").write_text("")
    (fake / "pv.py").write_text("from ._channel import _secret\nfrom . import util\n")
    (fake / "_channel.py").write_text("_secret = 1\n")
    (fake / "util.py").write_text("from . import ca\nca.create_channel('x')\n")
    (fake / "ca.py").write_text("")
    monkeypatch.setattr(__import__(__name__), "PKG", fake)
    private, crossing, raw = _scan()
    assert private == ["CaChannel.pv: from CaChannel._channel import _secret"]
    assert crossing == ["CaChannel.pv (pyepics) imports CaChannel._channel._secret (3.x)",
                        "CaChannel.pv (pyepics) imports CaChannel.util (3.x)"]
    assert raw == ["CaChannel.util: ca.create_channel"]
