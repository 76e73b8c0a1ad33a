"""Computes ``performance_trends`` points from the roll-ups (see ``trends``) and writes them.

A service may have several instances, each with its own roll-up rows. A trend is of the
service (and of each endpoint) as a whole: per period, its requests and errors are summed
over the instances, and its p95 is taken from their summed bucket rows, never from one
instance's row nor from a mean of theirs.
"""

from __future__ import annotations

from typing import Any

from ..analyze import schema
from ..analyze.trends import DAY, PERIODS, Period, trend_fields
from ..model import Point
from ..store import rollups
from ..store.storage import Storage
from .rollup import percentile_points, summed

TRENDS_RP = rollups.DAILY  # 90 days
Series = tuple[str, str, str]  # service, endpoint, method


def periods(counts: dict[str, Any], buckets: dict[str, Any], length_s: int
            ) -> dict[Series, dict[int, Period]]:
    """Per series (``_all`` included), its periods: summed requests and errors, and the
    p95 of the summed buckets, from answers grouped by time and series (epoch s). Pure."""
    by_time: dict[int, tuple[list[Any], list[Any]]] = {}
    for series in buckets.get("series", []):
        tags, columns = series.get("tags", {}), series.get("columns", [])
        for row in series.get("values", []):
            by_time.setdefault(int(row[0]), ([], []))[0].append(
                (tags, dict(zip(columns, row, strict=False))))
    for series in counts.get("series", []):
        tags = series.get("tags", {})
        for t, requests, errors in series.get("values", []):
            by_time.setdefault(int(t), ([], []))[1].append(
                (tags, 0.0, requests or 0.0, errors or 0.0))
    out: dict[Series, dict[int, Period]] = {}
    for t, (bucket_rows, sum_rows) in by_time.items():
        p95 = {tuple(sorted(tags.items())): fields.get("p95_ms")
               for _, tags, fields, _ in percentile_points(bucket_rows, [], t * 1000)}
        for key, (_, requests, errors) in summed(sum_rows).items():
            if requests > 0:
                tags, value = dict(key), p95.get(key)
                series = (tags.get("service", ""), tags.get("endpoint", ""),
                          tags.get("method", ""))
                out.setdefault(series, {})[t] = Period(
                    t, value if isinstance(value, float) else None, requests,
                    requests * 60.0 / length_s, errors)
    return out


async def run_trends(storage: Storage, start_s: int, period: str) -> int:
    """Trend points for the hour or day starting at ``start_s``; returns points written."""
    source = rollups.HOURLY if period == "hour" else rollups.DAILY
    length = PERIODS[period]
    rows = await storage.trend_rows(source, start_s, length, 30 * DAY)
    points: list[Point] = []
    for (service, endpoint, method), history in periods(rows["counts"], rows["buckets"],
                                                         length).items():
        current = history.get(start_s)
        if current is None:
            continue
        tags = {"service": service, "endpoint": endpoint, "method": method, "period": period}
        points.append((schema.TRENDS, tags, trend_fields(current, history, period),
                       start_s * 1000))
    await storage.write(points, TRENDS_RP)
    return len(points)
