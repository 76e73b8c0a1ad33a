"""The walls: exporter and bridge never import each other; the shared root modules import
neither; the bridge's pure modules import no I/O module of the bridge nor an I/O library."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"promflux.exporter": ROOT / "exporter", "promflux.bridge": ROOT / "bridge"}
# The bridge's pure modules, by path below bridge/.
PURE = sorted([*(f"analyze/{p.stem}" for p in (ROOT / "bridge" / "analyze").glob("[!_]*.py")),
               "ingest/exposition", "store/lineprotocol", "store/rollups",
               "serve/status_page", "retry", "redact"])
IO_LIBRARIES = {"aiohttp", "httpx", "socket", "os", "pathlib", "yaml", "psutil",
                "influxdb_client", "schedule", "requests", "urllib", "subprocess", "shutil",
                "io", "tempfile", "prometheus_client"}
# Backoff.sleep awaits asyncio.sleep: the one I/O call a pure module may make.
ALLOWED = {"retry": {"asyncio"}}


def imports(path: Path, package: str) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def package_of(path: Path) -> str:
    for name, folder in PACKAGES.items():
        if folder in path.parents:
            rel = path.parent.relative_to(folder).parts
            return ".".join([name, *rel])
    return "promflux"


def modules(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


@pytest.mark.parametrize("package, other", [("promflux.exporter", "promflux.bridge"),
                                            ("promflux.bridge", "promflux.exporter")])
def test_packages_never_import_each_other(package, other):
    paths = modules(PACKAGES[package])
    assert paths
    for path in paths:
        found = imports(path, package_of(path))
        bad = {n for n in found if n == other or n.startswith(other + ".")
               or n.split(".")[0] in {"exporter", "bridge"}}  # the old flat names
        assert not bad, (path, bad)


def test_shared_root_modules_import_neither_side():
    paths = sorted((ROOT / "promflux").glob("*.py"))
    assert len(paths) >= 3
    for path in paths:
        found = imports(path, "promflux")
        assert not {n for n in found if n.startswith(("promflux.exporter", "promflux.bridge"))}


@pytest.mark.parametrize("module", PURE)
def test_pure_bridge_modules_do_no_io(module):
    path = ROOT / "bridge" / f"{module}.py"
    found = imports(path, package_of(path))
    pure = {f"promflux.bridge.{m.replace('/', '.')}" for m in PURE}
    bridge_modules = {n for n in found if n.startswith("promflux.bridge.")}
    # Importing a name from a pure module (``from .schema import X``) is fine too.
    impure = {n for n in bridge_modules if n not in pure and n.rpartition(".")[0] not in pure
              and n not in {f"promflux.bridge.{p}" for p in ("analyze", "ingest", "store",
                                                             "serve")}}
    assert not impure, impure
    libraries = {n.split(".")[0] for n in found if not n.startswith("promflux")}
    assert not libraries & (IO_LIBRARIES | {"asyncio"}) - ALLOWED.get(module, set()), libraries


def test_the_bridge_serves_the_exporters_fetch_script_without_importing_it():
    import subprocess
    import sys

    code = ("import sys, promflux.bridge.app, promflux.bridge.serve.http as h; "
            "assert 'promflux.exporter' not in sys.modules, 'the bridge imported the exporter'; "
            "sys.stdout.write(h.SCRIPT.decode())")
    served = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout
    assert served == (ROOT / "exporter" / "static" / "promflux-fetch.js").read_text()


def test_no_class_over_200_lines_nor_function_over_80():
    too_long = []
    for folder in (ROOT / "exporter", ROOT / "bridge", ROOT / "promflux"):
        for path in modules(folder):
            for node in ast.walk(ast.parse(path.read_text())):
                limit = (200 if isinstance(node, ast.ClassDef) else
                         80 if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) else 0)
                if limit and node.end_lineno - node.lineno + 1 > limit:
                    too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert not too_long, too_long
