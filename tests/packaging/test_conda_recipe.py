"""conda-recipe/: rendered and checked against pyproject, built and tested like conda-build.

conda-build cannot reach its channels here, so this does its steps by hand
on the recipe shipped in the sdist: render meta.yaml (Jinja2 with the
conda-build functions the recipe uses, then line selectors, then YAML),
install the host requirements into a fresh venv (the ``$PREFIX``), run
``build.sh`` in the source dir with ``PREFIX``/``PYTHON``/``SRC_DIR`` set,
and run the recipe's test section (imports, files, commands) there.
"""
import email.parser
import os
import re
import shutil
import sys
import zipfile
from pathlib import Path

import pytest

import CaChannel

from pkgtools import REPO, pyproject, run

jinja2 = pytest.importorskip("jinja2", reason="jinja2 renders the recipe (test extra)")
yaml = pytest.importorskip("yaml", reason="pyyaml parses the recipe (test extra)")

SELECTOR = re.compile(r"^(.*?)\s*#\s*\[(.+)\]\s*$")


def _name(req):
    return re.split(r"[\s<>=!~\[;(]", req.strip(), 1)[0].lower().replace("-", "_")


def _spec(req):
    """Version constraint of a requirement, normalized: 'setuptools >=68' -> '>=68'."""
    rest = req.strip()[len(_name(req)):]
    return ",".join(p.strip().replace(" ", "") for p in rest.split(",") if p.strip())


def _pin_compatible(version, max_pin):
    """conda-build's pin_compatible bounds (without its 'a0' suffix)."""
    parts = version.split(".")
    n = len(max_pin.split("."))
    upper = parts[:n]
    upper[-1] = str(int(upper[-1]) + 1)
    return ">=%s,<%s" % (version, ".".join(upper))


def render(recipe_dir: Path, host_versions=None, *, win=False):
    """meta.yaml -> dict, the way conda-build renders it for linux-64 (or win-64)."""
    source_root = recipe_dir.parent

    def load_file_regex(load_file, regex_pattern, from_recipe_dir=False):
        base = recipe_dir if from_recipe_dir else source_root
        return re.search(regex_pattern, (base / load_file).read_text())

    def pin_compatible(name, max_pin="x", **_):
        version = (host_versions or {}).get(name)
        return name if version is None else "%s %s" % (name, _pin_compatible(version, max_pin))

    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    text = env.from_string((recipe_dir / "meta.yaml").read_text()).render(
        load_file_regex=load_file_regex, pin_compatible=pin_compatible,
        compiler=lambda lang: "%s_compiler_stub" % lang,
        stdlib=lambda lang: "%s_stdlib_stub" % lang, environ=os.environ)
    names = {"linux": not win, "unix": not win, "win": win, "osx": False,
             "py": sys.version_info[0] * 100 + sys.version_info[1] if sys.version_info[1] >= 10
             else sys.version_info[0] * 10 + sys.version_info[1],
             "x86_64": True, "aarch64": False}
    lines = []
    for line in text.splitlines():
        match = SELECTOR.match(line)
        if match:
            if not eval(match.group(2), {"__builtins__": {}}, names):  # noqa: S307
                continue
            line = match.group(1)
        lines.append(line)
    return yaml.safe_load("\n".join(lines))


def _wheel_requires(wheel):
    with zipfile.ZipFile(wheel) as whl:
        meta = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
        reqs = email.parser.Parser().parsestr(whl.read(meta).decode()).get_all("Requires-Dist")
    return [r for r in reqs if not re.search(r"\bextra\s*==", r)]


def test_recipe_matches_pyproject_and_version(dists):
    meta = render(REPO / "conda-recipe")
    assert meta["package"]["version"] == CaChannel.__version__
    assert (REPO / "conda-recipe" / meta["source"]["path"] / "setup.py").exists()
    reqs = meta["requirements"]
    assert "c_compiler_stub" in reqs["build"]

    host = {_name(r): _spec(r) for r in reqs["host"]}
    build_system = {_name(r): _spec(r) for r in pyproject()["build-system"]["requires"]}
    assert set(host) == set(build_system) | {"python", "pip"}, (host, build_system)
    for name, spec in build_system.items():
        assert host[name] == spec, (name, host[name], spec)

    # run: what setup.py declares for the installed package (pyproject's
    # dependencies are dynamic), as recorded in the built wheel
    run_reqs = {_name(r): _spec(r) for r in reqs["run"]}
    wheel_reqs = {_name(r): _spec(r) for r in _wheel_requires(dists.wheel)}
    assert set(run_reqs) == set(wheel_reqs) | {"python"}, (run_reqs, wheel_reqs)
    for name, spec in wheel_reqs.items():
        if name != "epicscorelibs":  # an ABI pin: checked against a real host env below
            assert run_reqs[name] == spec, (name, run_reqs[name], spec)

    imports = meta["test"]["imports"]
    assert {"CaChannel", "CaChannel.ca", "CaChannel._ca", "CaChannel._cffi"} <= set(imports)
    assert any("test_get.py" in c for c in meta["test"]["commands"])
    win = render(REPO / "conda-recipe", win=True)
    assert not any("$PREFIX" in c for c in win["test"]["commands"])


def test_build_sh_and_recipe_tests_in_a_fresh_prefix(unpacked_sdist, fresh_venv, tmp_path,
                                                     softioc):
    recipe = unpacked_sdist / "conda-recipe"
    meta = render(recipe)
    prefix = fresh_venv("conda-prefix")
    host = [r for r in meta["requirements"]["host"] if _name(r) != "python"]
    prefix.pip("install", "-q", *[r.replace(" ", "") for r in host], timeout=900)

    # build.sh, as conda-build runs it: in SRC_DIR, with PREFIX and PYTHON
    src_dir = unpacked_sdist.parent / "src_dir"
    shutil.copytree(unpacked_sdist, src_dir)
    build_env = prefix.env(PREFIX=prefix.path, PYTHON=prefix.python, SRC_DIR=src_dir,
                           RECIPE_DIR=recipe, CPU_COUNT=os.cpu_count() or 1,
                           EPICS_BASE="/nonexistent")  # build.sh must not use a site base
    proc = run(["bash", recipe / "build.sh"], env=build_env, cwd=src_dir, timeout=900)
    assert "Successfully installed" in proc.stdout, proc.stdout[-2000:]
    assert list((prefix.site_packages() / "CaChannel").glob("_ca.*.so"))

    # the run pins, rendered against the host env as conda-build would
    ecl = run([prefix.python, "-c", "import epicscorelibs.version as v;"
               "print(v.version); print(v.abi_requires())"]).stdout.splitlines()
    meta = render(recipe, {"epicscorelibs": ecl[0]})
    run_reqs = {_name(r): _spec(r) for r in meta["requirements"]["run"]}
    assert run_reqs["epicscorelibs"] == _spec(ecl[1]), (run_reqs["epicscorelibs"], ecl[1])
    deps = [r.replace(" ", "") for r in meta["requirements"]["run"] + meta["test"]["requires"]
            if _name(r) != "python"]
    prefix.pip("install", "-q", *deps, timeout=900)

    # test section: imports, files, commands (in a dir holding the test files)
    test_dir = tmp_path / "test_tmp"
    test_dir.mkdir()
    for name in meta["test"].get("files", []):
        shutil.copy2(recipe / name, test_dir / name)
    test_env = prefix.env(PREFIX=prefix.path, PYTHON=prefix.python)
    for module in meta["test"]["imports"]:
        run([prefix.python, "-c", "import %s" % module], env=test_env, cwd=test_dir, timeout=120)
    outputs = []
    for command in meta["test"]["commands"]:
        outputs.append(run(["bash", "-e", "-c", command], env=test_env, cwd=test_dir,
                           timeout=180).stdout)
    assert any("cext get ok: 4.5" in out for out in outputs), outputs
