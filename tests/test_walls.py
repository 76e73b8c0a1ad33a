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
               *(f"store/influxql/{p.stem}"
                 for p in (ROOT / "bridge" / "store" / "influxql").glob("[!_]*.py")),
               "model", "ingest/exposition", "ingest/resume", "store/lineprotocol",
               "store/rollups", "serve/status_page", "serve/charts", "serve/endpoint_page",
               "retry", "redact", "native"])
IO_LIBRARIES = {"aiohttp", "httpx", "socket", "os", "pathlib", "yaml", "psutil",
                "influxdb_client", "schedule", "requests", "urllib", "subprocess", "shutil",
                "io", "tempfile", "prometheus_client"}
# Backoff.sleep awaits asyncio.sleep: the one I/O call a pure module may make; native reads
# one environment variable (which core runs) at import.
ALLOWED = {"retry": {"asyncio"}, "native": {"os"}}


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
                                                             "serve", "store.influxql")}
              and n != "promflux.bridge._native"}  # (the compiled core: C, no I/O)
    assert not impure, impure
    libraries = {n.split(".")[0] for n in found  # (urllib.parse only quotes text)
                 if not n.startswith(("promflux", "urllib.parse"))}
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


# The bridge's layers, lowest first: a unit (a sub-package, or a module at the top of
# bridge/) imports only from its own layer or lower ones, and no two units import each
# other, directly or round a longer cycle.
LAYERS = [
    {"model", "redact", "bodies", "retry", "slices", "memory", "health", "loop_lag", "native",
     "event_loop", "inflate",
     "_native"},
    {"analyze"},  # the pure figures
    # settings (reading analyze's names and defaults); TLS and tokens as requests take them
    {"config", "tls", "auth"},
    {"store", "ingest", "discover"},  # I/O: storage, scraping, discovery
    {"notify", "jobs"},
    {"serve"},
    {"targets", "reload"},
    {"app"},
    {"__main__"},
]


def unit_graph() -> dict[str, set[str]]:
    """unit -> the units it imports (TYPE_CHECKING imports included: a cycle is a cycle)."""
    graph: dict[str, set[str]] = {}
    for path in modules(ROOT / "bridge"):
        rel = path.relative_to(ROOT / "bridge").with_suffix("").parts
        unit = rel[0] if rel[0] != "__init__" else "bridge"
        for name in imports(path, package_of(path)):
            if name.startswith("promflux.bridge."):
                other = name.split(".")[2]
                if other != unit:
                    graph.setdefault(unit, set()).add(other)
    return graph


def layer_of(unit: str) -> int:
    for number, units in enumerate(LAYERS):
        if unit in units:
            return number
    raise AssertionError(f"bridge/{unit} is in no layer of tests/test_walls.py")


def test_bridge_imports_never_run_back_up_the_layers():
    graph = unit_graph()
    upward = sorted(f"{unit} -> {other}" for unit, others in graph.items()
                    for other in others if layer_of(other) > layer_of(unit))
    assert not upward, upward


def test_no_import_cycle_between_bridge_units():
    graph = unit_graph()
    done: set[str] = set()

    def visit(unit: str, path: list[str]) -> None:
        if unit in path:
            raise AssertionError("import cycle: " + " -> ".join([*path, unit]))
        if unit in done:
            return
        for other in sorted(graph.get(unit, ())):
            visit(other, [*path, unit])
        done.add(unit)

    for unit in sorted(graph):
        visit(unit, [])


def test_no_influxql_outside_store():
    """Storage sits behind one interface: no module outside bridge/store/ writes a query
    (docstrings may name one)."""
    import re

    statement = re.compile(r"\b(SELECT|SHOW|CREATE|DROP|ALTER)\s+[A-Z\"*/(]")
    found = []
    for path in modules(ROOT / "bridge"):
        if (ROOT / "bridge" / "store") in path.parents:
            continue
        tree = ast.parse(path.read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef
                                    | ast.AsyncFunctionDef)
                      and node.body and isinstance(node.body[0], ast.Expr)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and id(node) not in docstrings and statement.search(node.value)):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, found
