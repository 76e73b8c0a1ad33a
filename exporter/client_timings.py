"""Browser-side API timings posted by promflux-fetch.js: validation and the script itself.

A batch is all or nothing: one bad entry (or too big a body) gets a 400 that says why and
records none of it, so a broken or hostile client cannot skew the figures. Routes are
route templates the service really has; any other value is recorded as ``<unmatched>``,
so label values stay bounded whatever a client sends.
"""

from __future__ import annotations

import json
import math
from functools import cache
from importlib import resources

from .metrics import UNMATCHED

MAX_BODY_BYTES = 64 * 1024
MAX_ENTRIES = 200
MAX_DURATION_MS = 10 * 60 * 1000.0
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
SCRIPT_NAME = "promflux-fetch.js"


class BatchError(ValueError):
    """A batch refused as a whole (HTTP 400)."""


Timing = tuple[str, str, str, float]  # route, method, status, seconds


def parse_batch(body: bytes, routes: frozenset[str]) -> list[Timing]:
    """``{"timings": [{"route", "method", "status", "duration_ms"}, ...]}`` -> timings."""
    if len(body) > MAX_BODY_BYTES:
        raise BatchError(f"body over {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BatchError("body is not JSON") from None
    entries = data.get("timings") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise BatchError('expected an object with a "timings" list')
    if len(entries) > MAX_ENTRIES:
        raise BatchError(f"more than {MAX_ENTRIES} timings in one batch")
    out = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise BatchError(f"timings[{i}] is not an object")
        route, method = entry.get("route"), entry.get("method")
        status, duration = entry.get("status"), entry.get("duration_ms")
        if not isinstance(route, str):
            raise BatchError(f"timings[{i}].route must be a string")
        if method not in METHODS:
            raise BatchError(f"timings[{i}].method must be one of {', '.join(sorted(METHODS))}")
        if isinstance(status, bool) or not isinstance(status, int) or not 0 <= status <= 599:
            raise BatchError(f"timings[{i}].status must be an integer 0-599 (0: network error)")
        if (isinstance(duration, bool) or not isinstance(duration, int | float)
                or not math.isfinite(duration) or not 0 <= duration <= MAX_DURATION_MS):
            raise BatchError(f"timings[{i}].duration_ms must be a number 0-{MAX_DURATION_MS:g}")
        out.append((route if route in routes else UNMATCHED, method, str(status),
                    duration / 1000.0))
    return out


@cache
def script() -> bytes:
    """promflux-fetch.js (served next to /metrics)."""
    return resources.files("exporter").joinpath("static", SCRIPT_NAME).read_bytes()
