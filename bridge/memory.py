"""Memory handed back to the system after a large set of targets has gone.

CPython frees the objects, but glibc's allocator keeps freed pages for reuse: without
this a bridge that once held 100,000 discovered targets stays at that size. Where the C
library has no ``malloc_trim`` (not glibc) this does nothing."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
from collections.abc import Callable


def _find_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


_TRIM = _find_trim()


FULL_BELOW = 5000  # live targets under which a full collection is short (about 25 ms)


async def release_memory(live_targets: int, settle_s: float = 1.0) -> None:
    """Collect the cycles the removed loops left (cancelled tasks hold their frames), then
    return free pages. It waits ``settle_s`` first, so the loops cancelled last have ended.
    Every generation is collected only when few targets are left: its cost grows with what
    is still alive. The trim runs in a thread (ctypes releases the GIL), so the event loop
    goes on meanwhile."""
    await asyncio.sleep(settle_s)
    gc.collect(2 if live_targets < FULL_BELOW else 1)
    if _TRIM is not None:
        await asyncio.to_thread(_TRIM, 0)
