"""A past hour's or day's rows, for the roll-up and trend jobs."""

from __future__ import annotations

from typing import Any

from ...analyze import schema
from .. import rollups
from .buckets import select

ROLLUP_PARTS = ("latency_buckets", "job_buckets", "sums")
TREND_PARTS = ("counts", "buckets")


def rollup(database: str, source_rp: str, start_s: int, length_s: int) -> str:
    """Summed bucket rows (latency and jobs) and summed latency, requests and errors per
    endpoint, over [start_s, start_s + length_s), grouped by every tag."""
    db, rp = rollups.quote(database), rollups.quote(source_rp)
    where = f"time >= {start_s}s AND time < {start_s + length_s}s"
    return "; ".join((
        select(f'{db}.{rp}."{schema.LATENCY_BUCKETS}"', where, "*"),
        select(f'{db}.{rp}."{schema.JOB_BUCKETS}"', where, "*"),
        f'SELECT sum("latency_sum_ms"), sum("requests"), sum("errors") FROM {db}.{rp}.'
        f'"{schema.PERFORMANCE}" WHERE {where} AND "endpoint" != \'{schema.ALL}\' '
        "GROUP BY *"))


def trends(database: str, source_rp: str, start_s: int, length_s: int,
           history_s: int) -> str:
    """Per endpoint and period of ``length_s``, the summed counts and bucket rows from
    ``history_s`` before ``start_s`` up to the end of its period. epoch=s."""
    db, rp = rollups.quote(database), rollups.quote(source_rp)
    where = f"time >= {start_s - history_s}s AND time < {start_s + length_s}s"
    group = f'time({length_s}s), "service", "endpoint", "method"'
    return "; ".join((
        f'SELECT sum("requests"), sum("errors") FROM {db}.{rp}.'
        f'{rollups.quote(schema.PERFORMANCE)} WHERE {where} AND "endpoint" != '
        f"'{schema.ALL}' GROUP BY {group} fill(none)",
        select(f"{db}.{rp}.{rollups.quote(schema.LATENCY_BUCKETS)}", where,
               group + " fill(none)")))


def named(parts: tuple[str, ...], results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The answer's results by part (a missing one is empty)."""
    return dict(zip(parts, [*results, *[{}] * len(parts)], strict=False))
