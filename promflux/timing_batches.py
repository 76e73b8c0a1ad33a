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
# Distinct (route, method, status) series one process records from browsers; a batch that
# would add more is refused, so no client can grow /metrics without bound.
MAX_SERIES = 1000
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Statuses kept as they are; any other valid one is recorded as its class ("4xx").
STATUSES = frozenset({0, 200, 201, 202, 204, 206, 301, 302, 303, 304, 307, 308, 400, 401,
                      403, 404, 405, 406, 408, 409, 410, 412, 413, 415, 422, 429, 500, 501,
                      502, 503, 504})
SCRIPT_NAME = "promflux-fetch.js"

Timing = tuple[str, str, str, float]  # route, method, status, seconds


class BatchError(ValueError):
    """A batch refused as a whole: ``status`` 400 (malformed) or 429 (too many series)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def status_label(status: int) -> str:
    """The status label: a common status as it is, any other as its class."""
    return str(status) if status in STATUSES else f"{status // 100}xx"


def admit(timings: list[Timing], seen: set[tuple[str, str, str]],
          limit: int = MAX_SERIES) -> None:
    """Add the batch's series to ``seen``, or raise (429) when that would pass ``limit``."""
    new = {(route, method, status) for route, method, status, _ in timings} - seen
    if len(seen) + len(new) > limit:
        raise BatchError(f"over {limit} distinct route/method/status series", 429)
    seen |= new


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
    if (isinstance(status, bool) or not isinstance(status, int)
            or not (status == 0 or 100 <= status <= 599)):
        raise BatchError(f"timings[{i}].status must be 0 (network error) or 100-599")
    if (isinstance(duration, bool) or not isinstance(duration, int | float)
            or not math.isfinite(duration) or not 0 <= duration <= MAX_DURATION_MS):
        raise BatchError(f"timings[{i}].duration_ms must be a number 0-{MAX_DURATION_MS:g}")
    return (route if route in routes else UNMATCHED, method, status_label(status),
            duration / 1000.0)
