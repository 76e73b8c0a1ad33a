"""The built wheel, installed into a fresh virtualenv as a user would, beside a project that
has its own ``exporter.py`` and ``bridge.py``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

USER_CODE = textwrap.dedent("""
    import importlib.metadata, json, sys
    import exporter, bridge                      # the user's own modules
    from fastapi import FastAPI
    from promflux.exporter import instrument, Metrics
    import promflux, promflux.bridge.app

    app = FastAPI()
    handle = instrument(app, service="user-api")
    handle.event("started")
    print(json.dumps({
        "exporter": exporter.WHO, "bridge": bridge.WHO,
        "handle": type(handle).__name__, "handle_is_metrics": isinstance(handle, Metrics),
        "version": promflux.__version__,
        "metadata_version": importlib.metadata.version("promflux"),
        "bridge_file": promflux.bridge.app.__file__,
    }))
""")


# What the bridge tests need beyond the package, in a user's fresh virtualenv.
TEST_TOOLS = ["pytest", "hypothesis", "httpx"]
# The bridge tests run against an installed copy (no influxd needed): the two cores side by
# side, the parser, the derived points and their math.
BRIDGE_TESTS = ["test_bridge_native.py", "test_bridge_exposition.py", "test_bridge_derive.py",
                "test_bridge_math.py"]


def run_bridge_tests(venv: Path, where: Path, env: dict[str, str]) -> str:
    """The bridge tests, copied beside nothing else, run by ``venv``'s Python: they import
    the installed package, not this checkout."""
    tests = where / "tests"
    tests.mkdir(parents=True)
    for name in ["__init__.py", "conftest.py", *BRIDGE_TESTS]:
        (tests / name).write_text((ROOT / "tests" / name).read_text())
    run = subprocess.run([str(venv / "bin" / "python"), "-m", "pytest", "-q",
                          "-p", "no:cacheprovider", "tests"], cwd=where, env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    return run.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out),
                    str(ROOT)], check=True, timeout=600)
    (found,) = out.glob("promflux-*.whl")
    return found


def test_the_wheel_installs_only_the_promflux_namespace(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.startswith("promflux-")}
    assert top == {"promflux"}, top
    for needed in ("promflux/py.typed", "promflux/exporter/static/promflux-fetch.js",
                   "promflux/bridge/ingest/loop.py", "promflux/labels.py"):
        assert needed in names
    assert not any("/tests/" in n or n.startswith("tests/") for n in names)


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel installed as a user would (and mypy)."""
    venv = tmp_path_factory.mktemp("user") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                    f"promflux[fastapi,aiohttp,bridge] @ {wheel.as_uri()}", "mypy", *TEST_TOOLS],
                   check=True, timeout=600)
    return venv


def test_user_modules_named_exporter_and_bridge_still_import(venv, tmp_path):
    python = venv / "bin" / "python"
    project = tmp_path / "project"
    project.mkdir()
    (project / "exporter.py").write_text('WHO = "the user\'s exporter"\n')
    (project / "bridge.py").write_text('WHO = "the user\'s bridge"\n')
    (project / "check.py").write_text(USER_CODE)
    done = subprocess.run([str(python), "check.py"], cwd=project, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    import json

    seen = json.loads(done.stdout)
    assert seen["exporter"] == "the user's exporter" and seen["bridge"] == "the user's bridge"
    assert seen["handle_is_metrics"]
    assert seen["version"] == seen["metadata_version"]
    assert str(venv) in seen["bridge_file"]  # the installed copy, not this checkout

    # Both ways of starting the bridge work from the user's folder.
    for argv in ([str(venv / "bin" / "promflux-bridge"), "--help"],
                 [str(python), "-m", "promflux.bridge", "--help"]):
        shown = subprocess.run(argv, cwd=project, capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0 and "--config" in shown.stdout, shown.stderr


TYPED_USE = textwrap.dedent("""
    from aiohttp import web
    from fastapi import FastAPI
    from promflux.exporter import Metrics, instrument

    handle: Metrics = instrument(FastAPI(), service="api")
    handle.event("device_update", 2)
    jobs = handle.queue("jobs")
    handle.size_callback("pool", lambda: 3.0)
    other: Metrics = instrument(web.Application(), service="ingest")
    reveal_type(jobs.qsize())
""")

MISTAKES = textwrap.dedent("""
    from promflux.exporter import instrument

    handle = instrument(object(), service="api")
    handle.event(7)
    handle.flush()
""")


def mypy(venv: Path, folder: Path, code: str) -> subprocess.CompletedProcess[str]:
    (folder / "user_code.py").write_text(code)
    return subprocess.run([str(venv / "bin" / "python"), "-m", "mypy", "--strict",
                           "--no-incremental", "user_code.py"], capture_output=True,
                          text=True, cwd=folder, timeout=300)


def test_the_installed_package_is_typed_for_its_users(venv, tmp_path):
    done = mypy(venv, tmp_path, TYPED_USE)
    assert done.returncode == 0, done.stdout
    assert re.search(r'Revealed type is "(builtins\.)?int"', done.stdout), done.stdout
    wrong = mypy(venv, tmp_path, MISTAKES)
    assert wrong.returncode == 1, wrong.stdout
    assert 'user_code.py:4: error' in wrong.stdout and '"object"' in wrong.stdout  # no app
    assert "user_code.py:5: error" in wrong.stdout  # an int where a kind (str) goes
    assert "user_code.py:6: error" in wrong.stdout  # the adapters' side is not public


def test_every_package_folder_is_in_the_distribution():
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    roots = {"promflux": ROOT / "promflux", "promflux.exporter": ROOT / "exporter",
             "promflux.bridge": ROOT / "bridge"}
    found = {".".join([name, *init.parent.relative_to(folder).parts])
             for name, folder in roots.items() for init in folder.rglob("__init__.py")}
    assert found == listed


def readme_installs() -> list[str]:
    """The pip commands of the README's Install section, as written."""
    section = (ROOT / "README.md").read_text().split("## Install", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^pip install '([^']+)'", section, re.M)


def test_the_readme_install_commands_work_from_a_checkout_and_from_git(tmp_path):
    """Exactly the README's commands, in a fresh virtualenv: from a clone of this
    repository (as the README has it, ``./promflux``), and from its git URL (a file://
    URL to the same repository stands for the git host)."""
    commands = readme_installs()
    local = [c for c in commands if c.startswith("./promflux[")]
    remote = [c for c in commands if " @ git+" in c]
    assert {c.split("[")[1].rstrip("]") for c in local} == {"fastapi", "starlette", "aiohttp",
                                                             "bridge"}
    assert len(remote) == 1
    subprocess.run(["git", "clone", "-q", str(ROOT), str(tmp_path / "promflux")], check=True,
                   timeout=120)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    for requirement in local:
        subprocess.run([*pip, requirement], cwd=tmp_path, check=True, timeout=600)
    check = ("import fastapi, starlette, aiohttp, yaml; import promflux.exporter, "
             "promflux.bridge.app; print('ok')")
    assert subprocess.run([str(venv / "bin" / "python"), "-c", check], capture_output=True,
                          text=True, check=True, cwd=tmp_path).stdout == "ok\n"
    done = subprocess.run([str(venv / "bin" / "promflux-bridge"), "--help"],
                          capture_output=True, text=True, check=True)
    assert "--config" in done.stdout
    from_git = tmp_path / "from-git"
    subprocess.run([sys.executable, "-m", "venv", str(from_git)], check=True, timeout=120)
    name = remote[0].partition(" @ ")[0]
    url = f"git+file://localhost{tmp_path / 'promflux'}"  # (pip wants a host)
    subprocess.run([str(from_git / "bin" / "python"), "-m", "pip", "install", "-q",
                    f"{name} @ {url}"], check=True, timeout=600)
    assert subprocess.run([str(from_git / "bin" / "promflux-bridge"), "--help"],
                          capture_output=True, text=True, check=True).returncode == 0


def test_the_wheel_carries_the_compiled_core_and_passes_the_bridge_tests(wheel, venv,
                                                                           tmp_path):
    names = zipfile.ZipFile(wheel).namelist()
    assert [n for n in names if re.fullmatch(r"promflux/bridge/_native\.[\w.-]+\.so", n)]
    assert not [n for n in names if n.endswith(".c")]
    assert re.search(r"-cp3\d+-cp3\d+-linux_", wheel.name), wheel.name  # built for here
    version = subprocess.run([str(venv / "bin" / "promflux-bridge"), "--version"],
                             capture_output=True, text=True, check=True).stdout
    assert "(core: compiled (C); event loop: uvloop " in version
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMFLUX_")}
    assert " passed" in run_bridge_tests(venv, tmp_path, env)


def test_the_sdist_installs_without_a_compiler_and_runs_the_pure_core(tmp_path):
    """No C compiler on PATH: the build goes on without the extension, the bridge says so
    and runs its pure-Python reference, and the bridge tests pass with it."""
    subprocess.run([sys.executable, "-m", "build", "--sdist", "--outdir", str(tmp_path),
                    str(ROOT)], check=True, timeout=600, capture_output=True)
    (sdist,) = tmp_path.glob("promflux-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
        assert {"bridge/_native.c", "bridge/ryu/d2s.c", "bridge/ryu/d2s_full_table.h",
                "bridge/ryu/LICENSE-Boost"} <= names
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    bare = {k: v for k, v in os.environ.items() if k not in ("CC", "LDSHARED")
            and not k.startswith("PROMFLUX_")}
    bare["PATH"] = str(venv / "bin")  # (no gcc, cc nor any other compiler)
    assert shutil.which("gcc", path=bare["PATH"]) is None
    install = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-v",
                              f"promflux[bridge] @ {sdist.as_uri()}", *TEST_TOOLS],
                             env=bare, capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-2000:]
    assert "building extension \"promflux.bridge._native\" failed" in (
        install.stdout + install.stderr)
    version = subprocess.run([str(venv / "bin" / "promflux-bridge"), "--version"], env=bare,
                             capture_output=True, text=True, check=True).stdout
    assert "core: pure Python (the compiled core was not built" in version
    assert " passed" in run_bridge_tests(venv, tmp_path / "run",
                                         {**bare, "PROMFLUX_NO_COMPILER": "1"})
