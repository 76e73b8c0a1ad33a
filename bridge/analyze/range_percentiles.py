"""Exact percentiles over any time range, from the stored bucket increases (summed by
``store.storage.Storage.range_buckets``). Pure.

Each scrape stores, per endpoint and method, one row of bucket fields: the requests in
each bucket (``bucket_fields``). Summed over a range, field by field, and accumulated,
they are the range's cumulative bucket counts, exactly. Prometheus's histogram_quantile
over those sums is the range's percentile: no averaging of per-interval percentiles.
"""

from __future__ import annotations

import math
from datetime import datetime

from . import schema
from .derive import percentile_fields


class RangeError(ValueError):
    """A request that cannot be answered (HTTP 400); the message says why."""


def parse_time(text: str) -> float:
    """RFC 3339 (``2026-11-28T10:00:00Z``) or epoch seconds -> epoch seconds."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise RangeError(f"not an RFC 3339 time nor epoch seconds: {text!r}") from None
    if moment.tzinfo is None:
        raise RangeError(f"give the time zone (Z or +01:00): {text!r}")
    return moment.timestamp()


def check(service: str, start: float, end: float) -> None:
    """RangeError unless the request names a service and a range that ends after it
    starts."""
    if not service:
        raise RangeError("service is required")
    if not (math.isfinite(start) and math.isfinite(end)) or end <= start:
        raise RangeError("end must be after start")


def answer(buckets: dict[float, float]) -> dict[str, float | None]:
    """p50/p90/p95/p99 in ms and the number of requests behind them."""
    fields = percentile_fields(buckets)
    out: dict[str, float | None] = {name: fields.get(name) for name, _ in schema.PERCENTILES}
    out["requests"] = buckets.get(math.inf, 0.0)
    return out
