"""The two walls: exporter and bridge never import each other, and the bridge's pure
modules never import its I/O ones (nor an I/O library)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PURE = ["exposition", "quantile", "rates", "lineprotocol", "schema", "derive", "rollups",
        "thresholds", "overview", "status_page", "trends", "alerts"]
IO_MODULES = {"scrape", "influx", "buffer", "writer", "app", "config", "rollup_job",
              "client_timings", "trends_job", "backfill", "webhooks", "__main__"}
IO_LIBRARIES = {"aiohttp", "httpx", "socket", "asyncio", "os", "pathlib", "yaml", "psutil",
                "influxdb_client", "schedule", "requests", "urllib"}


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: bridge.<module>
                names.add("." + (node.module or ""))
                names.update("." + alias.name for alias in node.names if not node.module)
            else:
                names.add(node.module or "")
    return names


@pytest.mark.parametrize("package, other", [("exporter", "bridge"), ("bridge", "exporter")])
def test_packages_never_import_each_other(package, other):
    for path in (ROOT / package).glob("*.py"):
        assert not any(n == other or n.startswith(other + ".") for n in imports(path)), path


@pytest.mark.parametrize("module", PURE)
def test_pure_bridge_modules_do_no_io(module):
    found = imports(ROOT / "bridge" / f"{module}.py")
    relative = {n.lstrip(".").split(".")[0] for n in found if n.startswith(".")}
    absolute = {n.split(".")[0] for n in found if not n.startswith(".")}
    assert not relative & IO_MODULES, relative & IO_MODULES
    assert not absolute & IO_LIBRARIES, absolute & IO_LIBRARIES


def test_the_bridge_serves_the_exporters_fetch_script_without_importing_it():
    import subprocess
    import sys

    code = ("import sys, bridge.app; "
            "assert 'exporter' not in sys.modules, 'the bridge imported the exporter'; "
            "sys.stdout.write(bridge.app._SCRIPT.decode())")
    served = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout
    assert served == (ROOT / "exporter" / "static" / "promflux-fetch.js").read_text()
