"""Baselines for regression detection: the InfluxQL that fetches them and the reduction of
its answer. Pure, no I/O (``jobs.baselines`` runs the query).

An endpoint's baseline is its traffic in the same hour of the day (UTC) over the last 7
days, from the hourly roll-ups, when that holds enough requests; otherwise the hour just
before the current window, from the raw points. Both are summed counts and summed
bucket rows, so the baseline's p95 and error rate are exact.
"""

from __future__ import annotations

from typing import Any

from . import bucket_fields, schema
from .overview import rows_of
from .regression import Baseline
from .window import Counts, endpoint_key

SAME_HOUR = "same hour, last 7 days"
PREVIOUS_HOUR = "previous hour"
_GROUP = 'GROUP BY "service", "endpoint", "method"'
DAYS = 7


def query(now: float, window_s: float, raw_rp: str, hourly_rp: str) -> str:
    """Statements: previous-hour buckets and counts, then for each of the last 7 days the
    same hour's buckets, then its counts. Each sums on the server: a small answer."""
    end = int((now - window_s) * 1e9)
    start = end - 3600 * 10**9
    hour = int(now) - int(now) % 3600
    days = [(hour - d * 86400) * 10**9 for d in range(1, DAYS + 1)]
    raw = f"time >= {start} AND time < {end}"
    statements = [_buckets(raw_rp, raw), _totals(raw_rp, raw)]
    statements += [_buckets(hourly_rp, f"time >= {d} AND time < {d + 3600 * 10**9}")
                   for d in days]
    statements += [_totals(hourly_rp, f"time >= {d} AND time < {d + 3600 * 10**9}")
                   for d in days]
    return "; ".join(statements)


def _buckets(rp: str, where: str) -> str:
    return bucket_fields.select(f'"{rp}"."{schema.LATENCY_BUCKETS}"', where,
                                _GROUP.removeprefix("GROUP BY "))


def _totals(rp: str, where: str) -> str:
    return (f'SELECT sum("requests") AS "requests", sum("errors") AS "errors" FROM '
            f'"{rp}"."{schema.PERFORMANCE}" WHERE {where} AND "endpoint" != \'{schema.ALL}\' '
            f'{_GROUP}')


def reduce(results: list[dict[str, Any]],
           min_requests: float) -> dict[tuple[str, str], Baseline]:
    """(service, endpoint key) -> baseline, per endpoint and for each service ("_all")."""
    results = list(results) + [{}] * (2 + 2 * DAYS)
    previous = _counts([results[0]], [results[1]])
    same_hour = _counts(results[2:2 + DAYS], results[2 + DAYS:2 + 2 * DAYS])
    # Each service is a key of its own too (its endpoints summed), chosen the same way: the
    # service's own history, whatever its endpoints' choices. Summed while the buckets hold
    # each bucket's own requests: endpoints' rows cover different bounds, and cumulative
    # counts only add where every endpoint has the bound.
    for found in (previous, same_hour):
        services: dict[str, Counts] = {}
        for (service, _), counts in found.items():
            services.setdefault(service, Counts()).add(counts)
        found.update({(service, schema.ALL): total for service, total in services.items()})
        for counts in found.values():  # each bucket's own requests -> cumulative counts
            if counts.buckets:
                counts.buckets = bucket_fields.cumulate(counts.buckets)
    out: dict[tuple[str, str], Baseline] = {}
    for key in set(previous) | set(same_hour):
        weekly = same_hour.get(key)
        if weekly is not None and weekly.requests >= min_requests:
            out[key] = Baseline(weekly, SAME_HOUR)
        elif key in previous:
            out[key] = Baseline(previous[key], PREVIOUS_HOUR)
    return out


def _counts(buckets: list[dict[str, Any]],
            totals: list[dict[str, Any]]) -> dict[tuple[str, str], Counts]:
    """Summed over the statements' answers, per (service, endpoint key); the buckets hold
    each bucket's own requests."""
    out: dict[tuple[str, str], Counts] = {}
    for result in buckets:
        for series in result.get("series", []):
            tags = series.get("tags", {})
            counts = out.setdefault((tags.get("service", ""), endpoint_key(tags)), Counts())
            for row in rows_of(series):
                bucket_fields.add_own(row, counts.buckets)
    for result in totals:
        for series in result.get("series", []):
            tags = series.get("tags", {})
            counts = out.setdefault((tags.get("service", ""), endpoint_key(tags)), Counts())
            for row in rows_of(series):
                counts.requests += float(row.get("requests") or 0.0)
                counts.errors += float(row.get("errors") or 0.0)
    return out
