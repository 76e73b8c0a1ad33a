"""This tree's bridge with its pure hot modules compiled by mypyc, in a temporary directory
(``bench/bridge_vs_prometheus.py --mypyc`` runs it beside the pure-Python bridge).

    .venv/bin/python bench/compiled.py    # builds once and prints the directory

The copy is laid out as ``promflux/bridge/...`` so each compiled module keeps its import
name; ``bridge_argv`` puts the copy's ``promflux`` folder first on ``promflux.__path__``.
An extension module is found before a ``.py`` file of the same name, so only the listed
modules run compiled.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOT = ("analyze/derive.py", "analyze/bucket_fields.py", "analyze/rates.py",
       "analyze/quantile.py", "ingest/exposition.py", "store/lineprotocol.py")


def compiled_copy(modules: tuple[str, ...] = HOT) -> Path:
    """Build the copy; returns the folder to put on ``promflux.__path__``."""
    top = Path(tempfile.mkdtemp(prefix="bridge-mypyc-"))
    package = top / "promflux"
    shutil.copytree(ROOT / "promflux", package,
                    ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    shutil.copytree(ROOT / "bridge", package / "bridge",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    mypyc = Path(sys.executable).with_name("mypyc")
    subprocess.run([str(mypyc), *(f"promflux/bridge/{m}" for m in modules)], cwd=top,
                   check=True, capture_output=True)
    return package


if __name__ == "__main__":
    print(compiled_copy())
