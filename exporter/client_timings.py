"""promflux-fetch.js, served next to /metrics; its batches are parsed by
``promflux.client_timings`` (shared with the bridge)."""

from __future__ import annotations

from functools import cache
from importlib import resources

from promflux.client_timings import (
    MAX_BODY_BYTES,
    SCRIPT_NAME,
    BatchError,
    Timing,
    admit,
    parse_batch,
)

__all__ = ["MAX_BODY_BYTES", "SCRIPT_NAME", "BatchError", "Timing", "admit", "parse_batch",
           "script"]


@cache
def script() -> bytes:
    """promflux-fetch.js (served next to /metrics)."""
    return resources.files("promflux.exporter").joinpath("static", SCRIPT_NAME).read_bytes()
