"""Exact percentiles over any time range, from the stored bucket increases. Pure.

Each scrape stores, per endpoint and method, the increase of every cumulative
``le`` bucket that received requests (plus the one empty bound below them). Summed over a
range, per bound, they are the range's cumulative bucket counts, exactly: a bound missing
from an interval had no requests at or below it then. Prometheus's histogram_quantile over
those sums is the range's percentile: no averaging of per-interval percentiles.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ..store.lineprotocol import stored
from ..store.rollups import RAW
from . import schema
from .derive import percentile_fields
from .quantile import parse_le


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


def literal(value: str) -> str:
    """An InfluxQL string literal for a tag value as stored."""
    return "'" + stored(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def query(service: str, endpoint: str | None, method: str | None, start: float,
          end: float) -> str:
    """The summed bucket increases of one endpoint (or the service) over [start, end)."""
    if not service:
        raise RangeError("service is required")
    if not (math.isfinite(start) and math.isfinite(end)) or end <= start:
        raise RangeError("end must be after start")
    where = [f'"service" = {literal(service)}']
    if endpoint:
        where.append(f'"endpoint" = {literal(endpoint)}')
    if method:
        where.append(f'"method" = {literal(method)}')
    return (f'SELECT sum("count") AS "count" FROM "{RAW}"."{schema.LATENCY_BUCKETS}" '
            f'WHERE {" AND ".join(where)} AND time >= {int(start * 1e9)} '
            f'AND time < {int(end * 1e9)} GROUP BY "le"')


def buckets_of(results: Iterable[dict[str, Any]]) -> dict[float, float]:
    """The query's answer -> {upper bound: summed cumulative count}."""
    out: dict[float, float] = {}
    for result in results:
        for series in result.get("series", []):
            try:
                le = parse_le(series.get("tags", {}).get("le", ""))
            except ValueError:
                continue
            for row in series.get("values", []):
                if le == le and row[1] is not None:  # (NaN: not a bound)
                    out[le] = out.get(le, 0.0) + float(row[1])
    return out


def answer(buckets: dict[float, float]) -> dict[str, float | None]:
    """p50/p90/p95/p99 in ms and the number of requests behind them."""
    fields = percentile_fields(buckets)
    out: dict[str, float | None] = {name: fields.get(name) for name, _ in schema.PERCENTILES}
    out["requests"] = buckets.get(math.inf, 0.0)
    return out
