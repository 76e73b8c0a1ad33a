"""promflux-fetch.js, served next to /metrics; its batches are parsed by
``promflux.timing_batches`` (shared with the bridge)."""

from __future__ import annotations

from functools import cache
from importlib import resources

from promflux.timing_batches import (
    MAX_BODY_BYTES,
    SCRIPT_NAME,
    BatchError,
    Timing,
    admit,
    parse_batch,
)

__all__ = ["MAX_BODY_BYTES", "SCRIPT_NAME", "BatchError", "Timing", "admit", "cors",
           "parse_batch", "script"]

PREFLIGHT_MAX_AGE_S = 600


def cors(origin: str | None, allowed: frozenset[str] | None, preflight: bool = False,
         with_auth: bool = False) -> list[tuple[str, str]] | None:
    """CORS headers for a beacon request from ``origin``: only for the origins given as
    ``browser_origins`` (None: same-origin pages only, no CORS). ``None`` when the origin
    may not post; ``[]`` when no CORS is involved (no Origin header)."""
    if origin is None:
        return []
    if allowed is None or origin not in allowed:
        return None
    headers = [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
    if preflight:
        headers += [("Access-Control-Allow-Methods", "POST"),
                    ("Access-Control-Allow-Headers",
                     "Content-Type, Authorization" if with_auth else "Content-Type"),
                    ("Access-Control-Max-Age", str(PREFLIGHT_MAX_AGE_S))]
    return headers


@cache
def script() -> bytes:
    """promflux-fetch.js (served next to /metrics)."""
    return resources.files("promflux.exporter").joinpath("static", SCRIPT_NAME).read_bytes()
