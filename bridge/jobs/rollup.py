"""Hourly and daily percentiles from summed buckets, written next to the CQ roll-ups.

The continuous queries sum ``latency_buckets`` and the counts; percentiles cannot be summed,
so this job (run on the hour and the day by ``schedule`` in the bridge) sums the interval's
bucket increases per endpoint, applies histogram_quantile, and writes p50/p90/p95/p99, the
exact mean (sum/count) and the error rate (errors/requests) into the roll-up's
``performance_metrics`` point: same tags, same timestamp, so InfluxDB merges the fields into
the CQ's point.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..analyze import schema
from ..analyze.derive import Point, percentile_fields
from ..store import rollups
from ..store.influx import InfluxClient
from ..store.lineprotocol import encode_points


def percentile_points(bucket_rows: Iterable[tuple[dict[str, str], float]],
                      sum_rows: Iterable[tuple[dict[str, str], float, float, float]],
                      timestamp_ms: int) -> list[Point]:
    """Points from summed buckets ({service, endpoint, method, le}, count) and summed
    (tags, latency_sum_ms, requests, errors); the service-wide ``_all`` rows are added.
    Pure."""
    buckets: dict[tuple[str, str, str], dict[float, float]] = {}
    for tags, count in bucket_rows:
        try:
            le = float(tags["le"])
        except (KeyError, ValueError):
            continue
        for key in ((tags.get("service", ""), tags.get("endpoint", ""), tags.get("method", "")),
                    (tags.get("service", ""), schema.ALL, schema.ALL)):
            per_le = buckets.setdefault(key, {})
            per_le[le] = per_le.get(le, 0.0) + count
    fields: dict[tuple[str, str, str], dict[str, float]] = {}
    for key, per_le in buckets.items():
        fields[key] = percentile_fields(per_le)
    totals: dict[tuple[str, str, str], list[float]] = {}
    for tags, latency_sum, requests, errors in sum_rows:
        for key in ((tags.get("service", ""), tags.get("endpoint", ""), tags.get("method", "")),
                    (tags.get("service", ""), schema.ALL, schema.ALL)):
            total = totals.setdefault(key, [0.0, 0.0, 0.0])
            total[0] += latency_sum
            total[1] += requests
            total[2] += errors
    for key, (latency_sum, requests, errors) in totals.items():
        if requests > 0:
            row = fields.setdefault(key, {})
            row["response_time_ms"] = latency_sum / requests
            row["error_rate_percent"] = 100.0 * errors / requests
    return [(schema.PERFORMANCE, {"service": s, "endpoint": e, "method": m}, f, timestamp_ms)
            for (s, e, m), f in fields.items() if f and s]


def _rows(results: list[dict[str, Any]]) -> list[tuple[dict[str, str], list[Any]]]:
    out = []
    for result in results:
        for series in result.get("series", []):
            for row in series.get("values", []):
                out.append((series.get("tags", {}), row))
    return out


async def run_period(client: InfluxClient, start_s: int, length_s: int, target_rp: str,
                     source_rp: str = rollups.RAW) -> int:
    """Compute and write the percentiles of one past hour or day; returns points written.

    Days read the hourly roll-up's summed buckets (exact, and kept 30 days where raw points
    are kept 7), so a day can be backfilled as long as its hours are there."""
    db = rollups.quote(client.database)
    raw = rollups.quote(source_rp)
    where = f"time >= {start_s}s AND time < {start_s + length_s}s"
    bucket_results = await client.query(
        f'SELECT sum("count") FROM {db}.{raw}."latency_buckets" WHERE {where} '
        f'GROUP BY "service", "endpoint", "method", "le"')
    sum_results = await client.query(
        f'SELECT sum("latency_sum_ms"), sum("requests"), sum("errors") FROM {db}.{raw}.'
        f'"performance_metrics" WHERE {where} AND "endpoint" != \'{schema.ALL}\' '
        f'GROUP BY "service", "endpoint", "method"')
    bucket_rows = [(tags, row[1] or 0.0) for tags, row in _rows(bucket_results)]
    sum_rows = [(tags, row[1] or 0.0, row[2] or 0.0, row[3] or 0.0)
                for tags, row in _rows(sum_results)]
    points = percentile_points(bucket_rows, sum_rows, start_s * 1000)
    if points:
        await client.write(encode_points(points), rp=target_rp)
    return len(points)
