"""What the rest of the bridge asks of its database, by meaning: the status page's figures,
an endpoint's buckets over a range, the regression baselines. The InfluxQL and the shape
of each answer stay in ``store``; callers get results by name.

A second backend (InfluxDB 2.x/3.x through ``influxdb-client``, say) would implement these
methods, ``InfluxClient.setup`` and ``InfluxClient.write`` (docs/architecture.md)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

from ..analyze import bucket_fields
from ..model import Point
from . import rollups
from .influx import InfluxClient, InfluxError
from .influxql import baselines, overview, periods, ranges
from .lineprotocol import encode_points


class Queue(Protocol):
    """The writer (``store.writer.Writer``) as the jobs use it."""

    @property
    def settled(self) -> int: ...

    def submit(self, points: Sequence[Point], rp: str = "") -> int | None: ...


class Storage:
    def __init__(self, client: InfluxClient, database: str, writer: Queue | None = None,
                 wait_s: float = 60.0) -> None:
        self.client = client
        self.database = database
        # Through the writer: buffered on disk while InfluxDB is away, split on refusal,
        # every point counted. Without one (the command line's backfill, tests of a job
        # alone) points are written at once, and a refusal fails the caller.
        self.writer = writer
        self.wait_s = wait_s

    async def write(self, points: Sequence[Point], rp: str) -> None:
        """Points for retention policy ``rp``; returns once they are stored (a job reads
        what the one before it wrote), or raises InfluxError after ``wait_s`` (they stay
        queued and are written when InfluxDB takes them)."""
        if not points:
            return
        if self.writer is None:
            await self.client.write(encode_points(points), rp=rp)
            return
        number = self.writer.submit(points, rp)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s
        while number is not None and self.writer.settled < number:
            if loop.time() > deadline:
                raise InfluxError(f"{len(points)} points for {rp} not stored within "
                                  f"{self.wait_s:.0f} s (they stay queued)", retryable=True)
            await asyncio.sleep(0.05)  # (a job's write: rare, so a poll is cheap enough)

    async def period_rows(self, source_rp: str, start_s: int, length_s: int
                          ) -> dict[str, dict[str, Any]]:
        """A past period's summed rows (``periods.rollup``), by part."""
        return periods.named(periods.ROLLUP_PARTS, await self.client.query(
            periods.rollup(self.database, source_rp, start_s, length_s)))

    async def trend_rows(self, source_rp: str, start_s: int, length_s: int,
                         history_s: int) -> dict[str, dict[str, Any]]:
        """Per period counts and bucket rows (``periods.trends``), by part; epoch s."""
        return periods.named(periods.TREND_PARTS, await self.client.query(
            periods.trends(self.database, source_rp, start_s, length_s, history_s),
            epoch="s"))

    async def rollup_rows(self, which: Sequence[rollups.Rollup], source_rp: str,
                          interval: str, where: str) -> list[dict[str, Any]]:
        """The continuous queries' SELECTs as plain ones (epoch ms), one result each."""
        return list(await self.client.query("; ".join(
            rollups.select_rows(self.database, r, source_rp, interval, where)
            for r in which), epoch="ms"))

    async def overview(self) -> dict[str, dict[str, Any]]:
        """The status page's figures (``analyze.overview`` reduces them), by statement
        name; times in ms."""
        return overview.named(await self.client.query(overview.QUERY, db=self.database,
                                                      epoch="ms"))

    async def range_buckets(self, service: str, endpoint: str | None, method: str | None,
                            start: float, end: float) -> dict[float, float]:
        """{upper bound: cumulative requests} of an endpoint (or the service) over
        [start, end), epoch seconds, summed exactly from the raw bucket rows."""
        results = await self.client.query(
            ranges.range_buckets(service, endpoint, method, start, end), db=self.database)
        return bucket_fields.cumulative(
            dict(zip(series.get("columns", []), row, strict=False))
            for result in results for series in result.get("series", [])
            for row in series.get("values", []))

    async def state_changes(self, service: str, endpoint: str, start: float, end: float
                            ) -> list[dict[str, Any]]:
        """The state changes of an endpoint key over [start, end): rows with time (ms),
        metric, previous, level and value, newest first."""
        results = await self.client.query(
            ranges.state_changes(service, endpoint, start, end), db=self.database, epoch="ms")
        rows = [dict(zip(series["columns"], row, strict=False),
                     metric=series.get("tags", {}).get("metric"))
                for result in results for series in result.get("series", [])
                for row in series.get("values", [])]
        return sorted(rows, key=lambda r: -r["time"])

    async def baselines(self, now: float, window_s: float) -> dict[str, list[dict[str, Any]]]:
        """The baselines' answer by part (``analyze.baselines.reduce`` reads it)."""
        text = baselines.query(now, window_s, rollups.RAW, rollups.HOURLY)
        return baselines.named(await self.client.query(text, db=self.database, epoch="s"))
