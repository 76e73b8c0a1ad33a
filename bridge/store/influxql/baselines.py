"""Baselines for regression detection: the previous hour from the raw rows, and the same
hour of each of the last days from the hourly roll-ups; each sums on the server, so the
answer is small. epoch=s."""

from __future__ import annotations

from typing import Any

from ...analyze import schema
from .buckets import select

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
    return select(f'"{rp}"."{schema.LATENCY_BUCKETS}"', where,
                  _GROUP.removeprefix("GROUP BY "))


def _totals(rp: str, where: str) -> str:
    return (f'SELECT sum("requests") AS "requests", sum("errors") AS "errors" FROM '
            f'"{rp}"."{schema.PERFORMANCE}" WHERE {where} AND "endpoint" != \'{schema.ALL}\' '
            f'{_GROUP}')


def named(results: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The answer's results by part (``analyze.baselines.reduce`` reads them)."""
    results = list(results) + [{}] * (2 + 2 * DAYS)
    return {"previous_buckets": [results[0]], "previous_totals": [results[1]],
            "day_buckets": results[2:2 + DAYS], "day_totals": results[2 + DAYS:2 + 2 * DAYS]}
