"""Wall-clock roll-up jobs: percentiles and trends of each finished hour and day."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any

import schedule

from ..store import rollups
from ..store.influx import InfluxError
from ..store.storage import Storage
from .backfill import rollup_day, rollup_hour
from .layout import declare_bucket_fields
from .rollup import run_period
from .trends import run_trends

log = logging.getLogger("promflux.bridge")


async def roll_up_last(storage: Storage, length_s: int, target_rp: str,
                       continuous_queries: bool = True) -> None:
    """Percentiles of the last complete hour or day (see ``rollup``), then its trends;
    without continuous queries, every roll-up row of it first."""
    now = int(time.time())
    start = now - now % length_s - length_s
    daily = target_rp == rollups.DAILY
    try:
        if continuous_queries:
            written = await run_period(storage, start, length_s, target_rp,
                                       source_rp=rollups.HOURLY if daily else rollups.RAW)
            detail = f"{written} percentile points"
        else:
            await (rollup_day if daily else rollup_hour)(storage, start)
            detail = "every roll-up row (no continuous queries)"
        trends = await run_trends(storage, start, "day" if daily else "hour")
        log.info("roll-up for %s from %d: %s, %d trend points", target_rp, start, detail,
                 trends)
    except InfluxError as exc:
        log.warning("roll-up for %s failed: %s", target_rp, exc)


async def run_schedule(storage: Storage, ready: asyncio.Event | None = None,
                       poll_seconds: float = 20.0, continuous_queries: bool = True) -> None:
    """Run the hourly and daily jobs for ever (the ``schedule`` package, polled here), once
    ``ready`` (the schema exists)."""
    if ready is not None:
        await ready.wait()
    scheduler = schedule.Scheduler()
    jobs: set[asyncio.Task[None]] = set()

    def run(job: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(job)
        jobs.add(task)
        task.add_done_callback(jobs.discard)

    def spawn(length_s: int, target_rp: str) -> None:
        run(roll_up_last(storage, length_s, target_rp, continuous_queries))

    def declare() -> None:
        run(declare_bucket_fields(storage))

    declare()
    scheduler.every().hour.do(declare)

    # The last hour and day once at start: bucket rows have no CQ, and a bridge that was
    # down at the boundary would otherwise leave them unrolled (rolling up is idempotent).
    spawn(3600, rollups.HOURLY)
    spawn(86400, rollups.DAILY)
    # A few minutes after the boundary, once the last scrapes of the period are in.
    scheduler.every().hour.at(":05").do(spawn, 3600, rollups.HOURLY)
    scheduler.every().day.at("00:15").do(spawn, 86400, rollups.DAILY)
    while True:
        scheduler.run_pending()
        await asyncio.sleep(poll_seconds)
