"""Which core runs the per-sample hot path: the compiled one (``_native``, built from
``bridge/_native.c`` when the package is installed with a C compiler at hand), or the
pure-Python reference it is tested against.

``PROMFLUX_PURE=1`` in the environment forces the reference. Either core gives the same
samples, points and errors (tests/test_bridge_native.py); the compiled one is faster.
Reads one environment variable at import, nothing else.
"""

from __future__ import annotations

import os
from types import ModuleType

PURE_VARIABLE = "PROMFLUX_PURE"


def _load() -> tuple[ModuleType | None, str]:
    if os.environ.get(PURE_VARIABLE, "").strip() not in ("", "0"):
        return None, f"pure Python ({PURE_VARIABLE} is set)"
    try:
        from . import _native
    except ImportError:
        return None, ("pure Python (the compiled core was not built: this install had no "
                      "C compiler, or came from a source archive built without one)")
    return _native, "compiled (C)"


compiled, CORE = _load()
