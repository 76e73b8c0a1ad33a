"""Batched writes to InfluxDB with retries, falling back to the on-disk buffer.

Batches go straight to InfluxDB while it answers; when it does not (network error or
5xx) they go to the disk buffer, which is drained oldest first, with backoff, so points
reach InfluxDB in order once it is back. A 4xx is not retried: logged, counted, dropped
(a partial write keeps its valid points). Until set-up has created the database
(``set_ready``) every batch waits in the buffer: a write before that would be a final 404.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from time import perf_counter

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ..analyze.derive import Point
from ..retry import Backoff
from .buffer import DiskBuffer
from .influx import InfluxClient, InfluxError
from .lineprotocol import LineEncoder

log = logging.getLogger("promflux.bridge.writer")


class WriterMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.points = Counter("promflux_bridge_points_written", "Points InfluxDB accepted.",
                              registry=registry)
        self.errors = Counter("promflux_bridge_write_errors", "Failed writes, by kind.",
                              ["kind"], registry=registry)
        self.dropped = Counter("promflux_bridge_points_dropped",
                               "Points given up on, by reason.", ["reason"], registry=registry)
        self.duration = Histogram("promflux_bridge_write_duration_seconds",
                                  "Time of one write request to InfluxDB.", registry=registry)
        self.buffer_bytes = Gauge("promflux_bridge_buffer_bytes",
                                  "Bytes waiting in the on-disk buffer.", registry=registry)
        self.buffer_batches = Gauge("promflux_bridge_buffer_batches",
                                    "Batches waiting in the on-disk buffer.", registry=registry)


class Writer:
    """Accepts points from the scrape loops and gets them into InfluxDB."""

    def __init__(self, client: InfluxClient, buffer: DiskBuffer, metrics: WriterMetrics,
                 batch_size: int = 5000, max_backoff: float = 30.0) -> None:
        self.client = client
        self.buffer = buffer
        self.metrics = metrics
        self.batch_size = batch_size
        self.max_backoff = max_backoff
        self._encoder = LineEncoder()
        self._wake = asyncio.Event()
        # Held until set-up has created the database: a write before that gets a final 404.
        self.ready = False
        self._dropped_seen = buffer.dropped_points
        self.last_error = ""
        self._update_gauges()

    def _update_gauges(self) -> None:
        self.metrics.buffer_bytes.set(self.buffer.size_bytes)
        self.metrics.buffer_batches.set(len(self.buffer))
        if self.buffer.dropped_points > self._dropped_seen:
            self.metrics.dropped.labels("buffer_full").inc(
                self.buffer.dropped_points - self._dropped_seen)
            self._dropped_seen = self.buffer.dropped_points

    def set_ready(self) -> None:
        """The database exists: start writing, buffered batches first."""
        self.ready = True
        self._wake.set()

    async def submit(self, points: Sequence[Point], rp: str = "") -> None:
        """Write points now, or queue them on disk when InfluxDB is not answering."""
        for start in range(0, len(points), self.batch_size):
            body = self._encoder.encode(points[start:start + self.batch_size])
            if not body:
                continue
            if self.ready and len(self.buffer) == 0 and await self._send(rp, body):
                continue
            self.buffer.push(rp, body)  # behind what is already waiting: order is kept
            self._update_gauges()
            self._wake.set()

    async def _send(self, rp: str, body: bytes) -> bool:
        """True when InfluxDB took the batch (or refused it for good); False to retry."""
        started = perf_counter()
        try:
            result = await self.client.write(body, rp=rp or None)
        except InfluxError as exc:
            self.last_error = str(exc)
            if exc.retryable:
                self.metrics.errors.labels("retryable").inc()
                return False
            self.metrics.errors.labels(f"http_{exc.status}").inc()
            self.metrics.dropped.labels("rejected").inc(body.count(b"\n"))
            log.error("InfluxDB refused a batch of %d points: %s", body.count(b"\n"), exc)
            return True
        finally:
            self.metrics.duration.observe(perf_counter() - started)
        lines = body.count(b"\n")
        if result.partial:
            self.metrics.errors.labels("partial").inc()
            log.warning("InfluxDB stored part of a batch: %s", result.dropped_message)
        else:
            self.last_error = ""
        self.metrics.points.inc(lines)
        return True

    async def run(self) -> None:
        """Drain the buffer for ever: oldest first, with backoff while InfluxDB is away."""
        backoff = Backoff(0.5, self.max_backoff)
        while True:
            item = self.buffer.peek() if self.ready else None
            if item is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            rp, body = item
            if await self._send(rp, body):
                self.buffer.pop()
                self._update_gauges()
                backoff.reset()
                continue
            await backoff.sleep()

    async def flush(self, timeout: float) -> None:
        """Try to empty the buffer before shutting down (what is left stays on disk)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self.ready and len(self.buffer) and asyncio.get_running_loop().time() < deadline:
            rp, body = self.buffer.peek()  # type: ignore[misc]
            if not await self._send(rp, body):
                break
            self.buffer.pop()
        self._update_gauges()
