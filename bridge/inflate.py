"""Which zlib inflates the targets' gzip answers: zlib-ng's where it is installed, else
Python's own.

Targets answer gzip when asked (every Prometheus scraper asks), and a page of metrics
squeezes about 25 to 1: inflating it with the system zlib cost the bridge about a tenth
of its CPU per scraped sample, zlib-ng's inflate about a seventh of that
(docs/performance.md). aiohttp takes the module for the whole process through its public
``set_zlib_backend`` (aiohttp 3.12 and later); zlib-ng's module is a drop-in for Python's
``zlib``, the same streams in and out. ``PROMFLUX_ZLIB=zlib`` keeps Python's own.
"""

from __future__ import annotations

import os
from importlib.metadata import version
from types import ModuleType

ZLIB_VARIABLE = "PROMFLUX_ZLIB"


def fastest_zlib() -> tuple[ModuleType | None, str]:
    """The zlib module to inflate with (None: Python's own) and its name."""
    if os.environ.get(ZLIB_VARIABLE, "").strip().lower() == "zlib":
        return None, f"zlib ({ZLIB_VARIABLE}=zlib)"
    try:
        from zlib_ng import zlib_ng
    except ImportError:
        return None, "zlib (zlib-ng is not installed)"
    return zlib_ng, f"zlib-ng {version('zlib-ng')}"


def use_fastest_zlib() -> str:
    """Make aiohttp inflate with ``fastest_zlib``'s module; returns the name of the one
    that inflates."""
    import aiohttp

    module, name = fastest_zlib()
    if module is None:
        return name
    setter = getattr(aiohttp, "set_zlib_backend", None)
    if setter is None:  # (before aiohttp 3.12: the system zlib only)
        return f"zlib (aiohttp {aiohttp.__version__} takes no other)"
    setter(module)
    return name
