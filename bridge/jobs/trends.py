"""Computes ``performance_trends`` points from the roll-ups (see ``trends``) and writes them."""

from __future__ import annotations

from ..analyze import schema
from ..analyze.trends import DAY, PERIODS, Period, trend_fields
from ..store import rollups
from ..store.influx import InfluxClient
from ..store.lineprotocol import encode_points

TRENDS_RP = rollups.DAILY  # 90 days


async def run_trends(client: InfluxClient, start_s: int, period: str) -> int:
    """Trend points for the hour or day starting at ``start_s``; returns points written."""
    source = rollups.HOURLY if period == "hour" else rollups.DAILY
    db = rollups.quote(client.database)
    results = await client.query(
        f'SELECT "p95_ms", "requests", "requests_per_minute", "errors" FROM {db}.'
        f'{rollups.quote(source)}.{rollups.quote(schema.PERFORMANCE)} WHERE time >= '
        f'{start_s - 30 * DAY}s AND time < {start_s + PERIODS[period]}s '
        f'GROUP BY "service", "endpoint", "method"', epoch="s")
    points = []
    for result in results:
        for series in result.get("series", []):
            history = {int(t): Period(int(t), p95, requests or 0.0, rpm, errors or 0.0)
                       for t, p95, requests, rpm, errors in series.get("values", [])}
            current = history.get(start_s)
            if current is None:
                continue
            tags = {**series.get("tags", {}), "period": period}
            points.append((schema.TRENDS, tags, trend_fields(current, history, period),
                           start_s * 1000))
    if points:
        await client.write(encode_points(points), rp=TRENDS_RP)
    return len(points)
