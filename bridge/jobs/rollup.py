"""Hourly and daily bucket rows and percentiles, written next to the CQ roll-ups.

The continuous queries sum the counts. Bucket rows hold one field per bucket, which a CQ
cannot sum under the same names (``sum(/^le_/)`` names its columns ``sum_le_...``), and
percentiles cannot be summed at all. So this job (run on the hour and the day by
``schedule`` in the bridge, and again by the healer when late points arrive) sums the
period's bucket rows per series and writes them under their own names, applies
histogram_quantile to each endpoint's sum, and writes p50/p90/p95/p99, the exact mean
(sum/count) and the error rate (errors/requests) into the roll-up's ``performance_metrics``
point: same tags, same timestamp, so InfluxDB merges the fields into the CQ's point.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..analyze import bucket_fields, schema
from ..analyze.derive import percentile_fields
from ..model import Point
from ..store import rollups
from ..store.storage import Storage

Key = tuple[tuple[str, str], ...]  # a row's tags, sorted


def _keys(tags: dict[str, str]) -> tuple[Key, Key]:
    """The row's own tags, and those of its service-wide row (the same instance and
    labels, endpoint and method ``_all``)."""
    own = {k: v for k, v in tags.items() if v}
    service_wide = {**own, "endpoint": schema.ALL, "method": schema.ALL}
    return tuple(sorted(own.items())), tuple(sorted(service_wide.items()))


def summed(sum_rows: Iterable[tuple[dict[str, str], float, float, float]]
           ) -> dict[Key, list[float]]:
    """(latency_sum_ms, requests, errors) summed per row's own tags and per its
    service-wide row. Pure."""
    totals: dict[Key, list[float]] = {}
    for tags, latency_sum, requests, errors in sum_rows:
        for key in _keys(tags):
            total = totals.setdefault(key, [0.0, 0.0, 0.0])
            total[0] += latency_sum
            total[1] += requests
            total[2] += errors
    return totals


def percentile_points(bucket_rows: Iterable[tuple[dict[str, str], dict[str, Any]]],
                      sum_rows: Iterable[tuple[dict[str, str], float, float, float]],
                      timestamp_ms: int) -> list[Point]:
    """Points from summed bucket rows (tags, bucket fields) and summed (tags,
    latency_sum_ms, requests, errors); the service-wide ``_all`` rows are added. Each
    point keeps all of its rows' tags (an ``instance``, discovery labels), so its
    percentiles and ratios are those of the counts the roll-up stores under the same tags.
    Pure."""
    own: dict[Key, dict[float, float]] = {}
    for tags, row in bucket_rows:
        for key in _keys(tags):
            bucket_fields.add_own(row, own.setdefault(key, {}))
    fields: dict[Key, dict[str, float]] = {
        key: percentile_fields(bucket_fields.cumulate(counts)) for key, counts in own.items()}
    for key, (latency_sum, requests, errors) in summed(sum_rows).items():
        if requests > 0:
            row = fields.setdefault(key, {})
            row["response_time_ms"] = latency_sum / requests
            row["error_rate_percent"] = 100.0 * errors / requests
    return [(schema.PERFORMANCE, dict(key), f, timestamp_ms)
            for key, f in fields.items() if f and dict(key).get("service")]


def _rows(results: list[dict[str, Any]]) -> list[tuple[dict[str, str], list[Any]]]:
    out = []
    for result in results:
        for series in result.get("series", []):
            for row in series.get("values", []):
                out.append((series.get("tags", {}), row))
    return out


def summed_rows(measurement: str, results: dict[str, Any], timestamp_ms: int
                ) -> tuple[list[tuple[dict[str, str], dict[str, Any]]], list[Point]]:
    """A period's summed bucket rows (``GROUP BY *``) -> (tags, row) pairs, and the points
    that store them in the roll-up under the raw rows' field names. Pure."""
    rows: list[tuple[dict[str, str], dict[str, Any]]] = []
    points: list[Point] = []
    for series in results.get("series", []):
        tags = {k: v for k, v in series.get("tags", {}).items() if v}
        for row in series.get("values", []):
            record = dict(zip(series.get("columns", []), row, strict=False))
            fields = {name.removeprefix("sum_"): float(value) for name, value in record.items()
                      if name.startswith("sum_" + bucket_fields.PREFIX) and value is not None}
            if fields:
                rows.append((tags, record))
                points.append((measurement, tags, fields, timestamp_ms))
    return rows, points


def result_points(measurement: str, result: dict[str, Any]) -> list[Point]:
    """A roll-up SELECT's answer (``GROUP BY time(...), *``, epoch ms) -> the points that
    store it: its series' tags (empty ones left out), its non-null fields. Pure."""
    points: list[Point] = []
    for series in result.get("series", []):
        tags = {k: v for k, v in series.get("tags", {}).items() if v}
        columns = series.get("columns", [])
        for row in series.get("values", []):
            fields = {c: v for c, v in zip(columns[1:], row[1:], strict=False)
                      if v is not None and not isinstance(v, bool)}
            if fields and isinstance(row[0], int):
                points.append((measurement, tags, fields, row[0]))
    return points


async def run_period(storage: Storage, start_s: int, length_s: int, target_rp: str,
                     source_rp: str = rollups.RAW) -> int:
    """Sum one past hour's or day's bucket rows and compute its percentiles, and write
    them; returns points written.

    Days read the hourly roll-up's bucket rows (exact, and kept 30 days where raw points
    are kept 7), so a day can be backfilled as long as its hours are there."""
    rows = await storage.period_rows(source_rp, start_s, length_s)
    ts = start_s * 1000
    latency_rows, points = summed_rows(schema.LATENCY_BUCKETS, rows["latency_buckets"], ts)
    points += summed_rows(schema.JOB_BUCKETS, rows["job_buckets"], ts)[1]
    sum_rows = [(tags, row[1] or 0.0, row[2] or 0.0, row[3] or 0.0)
                for tags, row in _rows([rows["sums"]])]
    points += percentile_points(latency_rows, sum_rows, ts)
    await storage.write(points, target_rp)
    return len(points)
