"""Baselines for regression detection: the InfluxQL that fetches them and the reduction of
its answer. Pure, no I/O (``jobs.baselines`` runs the query).

An endpoint's baseline is its traffic in the same hour of the day (UTC) over the last 7
days, from the hourly roll-ups, when that holds enough requests; otherwise the hour just
before the current window, from the raw points. Both are summed counts and summed
cumulative buckets, so the baseline's p95 and error rate are exact.
"""

from __future__ import annotations

from typing import Any

from . import schema
from .regression import Baseline
from .window import Counts, endpoint_key

SAME_HOUR = "same hour, last 7 days"
PREVIOUS_HOUR = "previous hour"
_GROUP = 'GROUP BY "service", "endpoint", "method"'


def query(now: float, window_s: float, raw_rp: str, hourly_rp: str) -> str:
    """Four statements: previous-hour buckets and counts, then 7 days of hourly ones."""
    end = int((now - window_s) * 1e9)
    start = end - 3600 * 10**9
    hour = int(now) - int(now) % 3600
    week = (hour - 7 * 86400) * 10**9
    raw = f"time >= {start} AND time < {end}"
    hourly = f"time >= {week} AND time < {hour * 10**9}"
    return (
        f'SELECT sum("count") AS "count" FROM "{raw_rp}"."{schema.LATENCY_BUCKETS}" '
        f'WHERE {raw} {_GROUP}, "le"; '
        f'SELECT sum("requests") AS "requests", sum("errors") AS "errors" FROM '
        f'"{raw_rp}"."{schema.PERFORMANCE}" WHERE {raw} AND "endpoint" != \'{schema.ALL}\' '
        f'{_GROUP}; '
        f'SELECT "count" FROM "{hourly_rp}"."{schema.LATENCY_BUCKETS}" WHERE {hourly} '
        f'{_GROUP}, "le"; '
        f'SELECT "requests", "errors" FROM "{hourly_rp}"."{schema.PERFORMANCE}" '
        f'WHERE {hourly} AND "endpoint" != \'{schema.ALL}\' {_GROUP}')


def reduce(results: list[dict[str, Any]], now: float,
           min_requests: float) -> dict[tuple[str, str], Baseline]:
    """(service, endpoint key) -> baseline, per endpoint and for each service ("_all")."""
    results = list(results) + [{}] * 4
    hour_of_day = int(now) % 86400 // 3600
    previous = _counts(results[0], results[1], None)
    same_hour = _counts(results[2], results[3], hour_of_day)
    out: dict[tuple[str, str], Baseline] = {}
    for key in set(previous) | set(same_hour):
        weekly = same_hour.get(key)
        if weekly is not None and weekly.requests >= min_requests:
            out[key] = Baseline(weekly, SAME_HOUR)
        elif key in previous:
            out[key] = Baseline(previous[key], PREVIOUS_HOUR)
    services: dict[str, dict[str, Counts]] = {}
    for (service, _), base in out.items():
        total = services.setdefault(service, {}).setdefault(base.source, Counts())
        total.add(base.counts)
    for service, by_source in services.items():
        # One source for the whole service: the one most of its endpoints use.
        source = max(by_source, key=lambda s: by_source[s].requests)
        out[(service, schema.ALL)] = Baseline(by_source[source], source)
    return out


def _counts(buckets: dict[str, Any], totals: dict[str, Any],
            hour_of_day: int | None) -> dict[tuple[str, str], Counts]:
    out: dict[tuple[str, str], Counts] = {}

    def rows(series: dict[str, Any]) -> list[dict[str, Any]]:
        columns = series["columns"]
        found = [dict(zip(columns, row, strict=False)) for row in series.get("values", [])]
        if hour_of_day is None:
            return found
        return [r for r in found if int(r["time"]) % 86400 // 3600 == hour_of_day]

    for series in buckets.get("series", []):
        tags = series.get("tags", {})
        try:
            le = float(tags.get("le", ""))
        except ValueError:
            continue
        key = (tags.get("service", ""), endpoint_key(tags))
        counts = out.setdefault(key, Counts())
        for row in rows(series):
            counts.buckets[le] = counts.buckets.get(le, 0.0) + float(row.get("count") or 0.0)
    for series in totals.get("series", []):
        tags = series.get("tags", {})
        key = (tags.get("service", ""), endpoint_key(tags))
        counts = out.setdefault(key, Counts())
        for row in rows(series):
            counts.requests += float(row.get("requests") or 0.0)
            counts.errors += float(row.get("errors") or 0.0)
    return out
