"""The batch format promflux-fetch.js posts: validation only. Pure.

A batch is all or nothing: one bad entry (or too big a body) is refused with a message
that says why, and none of it is recorded, so a broken or hostile client cannot skew the
figures. Routes are templates the receiver really has; any other value becomes
``<unmatched>``, so label values stay bounded whatever a client sends. The exporter and
the bridge both take batches in this format, each with its own set of routes.
"""

from __future__ import annotations

import json
import math

from .labels import UNMATCHED

MAX_BODY_BYTES = 64 * 1024
MAX_ENTRIES = 200
MAX_DURATION_MS = 10 * 60 * 1000.0
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
SCRIPT_NAME = "promflux-fetch.js"

Timing = tuple[str, str, str, float]  # route, method, status, seconds


class BatchError(ValueError):
    """A batch refused as a whole (HTTP 400)."""


def parse_batch(body: bytes, routes: frozenset[str]) -> list[Timing]:
    """``{"timings": [{"route", "method", "status", "duration_ms"}, ...]}`` -> timings."""
    if len(body) > MAX_BODY_BYTES:
        raise BatchError(f"body over {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BatchError("body is not JSON") from None
    entries = data.get("timings") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise BatchError('expected an object with a "timings" list')
    if len(entries) > MAX_ENTRIES:
        raise BatchError(f"more than {MAX_ENTRIES} timings in one batch")
    return [_timing(i, entry, routes) for i, entry in enumerate(entries)]


def _timing(i: int, entry: object, routes: frozenset[str]) -> Timing:
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
    return (route if route in routes else UNMATCHED, method, str(status), duration / 1000.0)
