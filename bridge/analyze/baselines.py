"""Baselines for regression detection: the reduction of the stored answer
(``store.influxql.baselines``) to a baseline per endpoint. Pure, no I/O.

An endpoint's baseline is its traffic in the same hour of the day (UTC) over the last 7
days, from the hourly roll-ups, when that holds enough requests; otherwise the hour just
before the current window, from the raw points. Both are summed counts and summed
bucket rows, so the baseline's p95 and error rate are exact.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import bucket_fields, schema
from .overview import rows_of
from .regression import Baseline
from .window import Counts, endpoint_key

SAME_HOUR = "same hour, last 7 days"
PREVIOUS_HOUR = "previous hour"


def reduce(answer: Mapping[str, list[dict[str, Any]]],
           min_requests: float) -> dict[tuple[str, str], Baseline]:
    """(service, endpoint key) -> baseline, per endpoint and for each service ("_all"),
    from the answer's results by name: ``previous_buckets`` and ``previous_totals`` (the
    hour before the window), ``day_buckets`` and ``day_totals`` (the same hour on each of
    the last days)."""
    previous = _counts(answer["previous_buckets"], answer["previous_totals"])
    same_hour = _counts(answer["day_buckets"], answer["day_totals"])
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
