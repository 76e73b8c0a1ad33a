"""Roll-ups that heal: an hour that receives points after it may have been rolled up (an
outage's buffer draining, a late target) is rolled up again, and so is its day.

The writer tells the healer the time span of every batch it stores; a batch for an hour
that ended more than a minute ago marks that hour. Every ``poll_s`` the marked hours are
rolled up again from the raw points (continuous-query bodies, exact percentiles, trends),
then their days from the hourly rows, however old, within the raw retention. Rolling up is
idempotent: the rows land on the same timestamps and tags and overwrite.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from ..analyze.trends import DAY, HOUR
from ..store.influx import InfluxError
from ..store.rollups import RAW
from ..store.storage import Storage
from .backfill import rollup_day, rollup_hour
from .trends import run_trends

log = logging.getLogger("promflux.bridge.heal")

LATE_S = 60  # points for an hour that ended this long ago arrived late


def span_ms(body: bytes) -> tuple[int, int] | None:
    """The first and last line's timestamps of a line-protocol body (ms), if readable.
    Reads those two lines only, not the body."""
    end = len(body) - 1 if body.endswith(b"\n") else len(body)
    newline = body.find(b"\n", 0, end)
    first = body[:newline if newline >= 0 else end]
    last = body[body.rfind(b"\n", 0, end) + 1:end]
    try:
        return int(first.rsplit(b" ", 1)[1]), int(last.rsplit(b" ", 1)[1])
    except (ValueError, IndexError):
        return None


class Healer:
    """Hours to roll up again, and the task that does it."""

    def __init__(self, storage: Storage, raw_retention_s: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.storage = storage
        self.raw_retention_s = raw_retention_s
        self.clock = clock
        self.hours: set[int] = set()

    def written(self, rp: str, body: bytes) -> None:
        """A body the writer stored: mark the complete hours it reached late (raw points
        only: the roll-ups' own rows are written late by design)."""
        if rp != RAW:
            return
        span = span_ms(body)
        if span is None:
            return
        now = self.clock()
        low, high = min(span) // 1000, max(span) // 1000
        if low >= now - now % HOUR:
            return  # the current hour: not late (the common case)
        for hour in range(low - low % HOUR, high + 1, HOUR):
            if hour + HOUR + LATE_S <= now and hour >= now - self.raw_retention_s:
                self.hours.add(hour)

    async def heal(self) -> int:
        """Roll up the marked hours again, then their complete days; returns the hours
        done (one InfluxDB refused stays marked for the next try)."""
        hours, self.hours = sorted(self.hours), set()
        now = self.clock()
        days: set[int] = set()
        healed = 0
        for hour in hours:
            try:
                await rollup_hour(self.storage, hour)
                await run_trends(self.storage, hour, "hour")
            except InfluxError as exc:
                log.warning("could not roll up %d again (kept for the next try): %s", hour,
                            exc)
                self.hours.add(hour)
                continue
            healed += 1
            days.add(hour - hour % DAY)
        for day in sorted(days):
            if day + DAY <= now:  # the current day is the scheduled job's
                try:
                    await rollup_day(self.storage, day)
                    await run_trends(self.storage, day, "day")
                except InfluxError as exc:
                    log.warning("could not roll up day %d again: %s", day, exc)
        if healed:
            log.info("rolled up %d hours again after late points", healed)
        return healed

    async def run(self, poll_s: float = 5.0) -> None:
        while True:
            await asyncio.sleep(poll_s)
            if self.hours:
                await self.heal()
