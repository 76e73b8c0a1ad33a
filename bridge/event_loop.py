"""Which event loop runs the bridge: uvloop's (libuv, its transports and its loop in
compiled code) where it is installed, else asyncio's own.

The bridge spends a good part of its CPU in the event loop and its socket transports, about
as much as in deriving its points (docs/performance.md); uvloop takes a share of that off.
``PROMFLUX_LOOP=asyncio`` forces asyncio's loop. Either loop runs the same code: nothing in
the bridge depends on which one it is.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

LOOP_VARIABLE = "PROMFLUX_LOOP"


def loop_factory() -> tuple[Callable[[], asyncio.AbstractEventLoop] | None, str]:
    """A factory for ``asyncio.Runner`` (None: asyncio's default) and its loop's name."""
    if os.environ.get(LOOP_VARIABLE, "").strip().lower() == "asyncio":
        return None, f"asyncio ({LOOP_VARIABLE}=asyncio)"
    try:
        import uvloop
    except ImportError:
        return None, "asyncio (uvloop is not installed)"
    from importlib.metadata import version

    return uvloop.new_event_loop, f"uvloop {version('uvloop')}"
