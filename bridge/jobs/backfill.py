"""Backfill: the roll-ups, percentiles and trends of a past time range, as the continuous
queries and the scheduled jobs would have made them (continuous queries never backfill).
The same functions roll up every period when the server runs no continuous queries.

    python -m promflux.bridge --config bridge.yml --backfill 2026-11-01T00:00:00Z [TO]

Hours are rolled up from the raw points (kept 7 days), days from the hours (kept 30 days).
Re-running is harmless: points land on the same timestamps and tags and overwrite.
"""

from __future__ import annotations

import logging

from ..analyze.trends import DAY, HOUR
from ..store import rollups
from ..store.storage import Storage
from .rollup import result_points, run_period
from .trends import run_trends

log = logging.getLogger("promflux.bridge.backfill")


async def _copy(storage: Storage, which: tuple[rollups.Rollup, ...], source: str,
                target: str, interval: str, where: str) -> None:
    """The continuous queries' roll-ups of one period, done by the bridge: each as a plain
    SELECT whose rows it writes (no SELECT ... INTO, which 2.x and Cloud do not run)."""
    results = await storage.rollup_rows(which, source, interval, where)
    points = [p for rollup, result in zip(which, results, strict=False)
              for p in result_points(rollup.measurement, result)]
    await storage.write(points, target)


async def rollup_hour(storage: Storage, start: int) -> None:
    where = f"time >= {start}s AND time < {start + HOUR}s"
    await _copy(storage, rollups.HOURLY_ROLLUPS, rollups.RAW, rollups.HOURLY, "1h", where)
    await run_period(storage, start, HOUR, rollups.HOURLY)


async def rollup_day(storage: Storage, start: int) -> None:
    where = f"time >= {start}s AND time < {start + DAY}s"
    await _copy(storage, rollups.DAILY_ROLLUPS, rollups.HOURLY, rollups.DAILY, "1d", where)
    await run_period(storage, start, DAY, rollups.DAILY, source_rp=rollups.HOURLY)


async def backfill(storage: Storage, start_s: int, end_s: int) -> tuple[int, int]:
    """Hours and days overlapping [start_s, end_s); returns (hours, days) done."""
    first_hour, hours = start_s - start_s % HOUR, 0
    for hour in range(first_hour, end_s, HOUR):
        await rollup_hour(storage, hour)
        await run_trends(storage, hour, "hour")
        hours += 1
    first_day, days = start_s - start_s % DAY, 0
    for day in range(first_day, end_s, DAY):
        await rollup_day(storage, day)
        await run_trends(storage, day, "day")
        days += 1
    log.info("backfilled %d hours and %d days", hours, days)
    return hours, days
