"""Batched writes to InfluxDB that never lose, wedge or stall the scrape loops.

Scrape loops hand points to ``submit``, which encodes them and appends the batches to a
bounded in-memory queue; it never waits. One task, ``run``, does all the I/O, one step at
a time: while nothing waits on disk it writes queued batches straight to InfluxDB (the
oldest waits up to ``flush_interval`` for others to join it in one write); when
InfluxDB does not answer (network, 5xx) or set-up has not created the database yet, queued
batches go to the disk buffer (in a worker thread), which is drained oldest first with
backoff. Because one task does every step in turn, the batch being sent can never be
trimmed or removed by anything else, and a buffered batch is removed by identity.

A batch InfluxDB refuses as such (a parse error, too large, an answer that cannot be
read) is split in halves until the bad lines stand alone; those are dropped, counted by
reason and logged once per reason, and the rest is written. A partial write counts the
points InfluxDB says it dropped. Every point submitted ends up written or counted in
``promflux_bridge_points_dropped_total`` by reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from time import monotonic, perf_counter

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ..model import Point
from ..retry import Backoff
from .buffer import DiskBuffer
from .influx import InfluxClient, InfluxError
from .lineprotocol import LineEncoder

log = logging.getLogger("promflux.bridge.writer")
# Points encoded per turn of the event loop when a submission is larger: about 10 ms of
# new tag sets, the slowest kind (a cached series takes a fraction of that).
ENCODE_SLICE = 2000


class WriterMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.points = Counter("promflux_bridge_points_written", "Points InfluxDB stored.",
                              registry=registry)
        self.submitted = Counter("promflux_bridge_points_submitted",
                                 "Points handed to the writer by the scrape loops and jobs.",
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
        self.queued_bytes = Gauge("promflux_bridge_write_queue_bytes",
                                  "Bytes of batches waiting in memory for the writer.",
                                  registry=registry)
        self._logged_reasons: set[str] = set()

    def drop(self, points: int, reason: str, why: str) -> None:
        """Count points given up on; log the first time each reason happens."""
        if points <= 0:
            return
        self.dropped.labels(reason).inc(points)
        if reason not in self._logged_reasons:  # once per reason: a flood stays readable
            self._logged_reasons.add(reason)
            log.error("dropped %d points (%s): %s (logged once per reason; "
                      "promflux_bridge_points_dropped_total counts every one)", points,
                      reason, why[:300])


@dataclass(slots=True)
class Batch:  # mutable: what is left of it after a write that stopped half-way
    rp: str
    body: bytes
    last: int = 0  # the last submission (``Writer.submit``'s number) it holds a part of
    lines: int = 0  # the points in ``body``
    at: float = 0.0  # when it was queued (monotonic)


@dataclass(slots=True)
class _Submission:
    rp: str
    points: Sequence[Point]
    number: int  # its submission's number
    done: int = 0  # points queued so far


class Deferred:
    """Large submissions still to encode, oldest first, and the task that encodes them: a
    slice of ``ENCODE_SLICE`` points per turn of the event loop, each handed to ``put``
    (which encodes and queues it); ``settle`` is told when one is done."""

    def __init__(self, put: Callable[[Sequence[Point], str, int], bool],
                 settle: Callable[[], None]) -> None:
        self._entries: deque[_Submission] = deque()
        self._task: asyncio.Task[None] | None = None
        self._put, self._settle = put, settle

    def __len__(self) -> int:
        return len(self._entries)

    def first(self) -> int:
        """The number of the oldest submission still (partly) to encode."""
        return self._entries[0].number

    def add(self, rp: str, points: Sequence[Point], number: int) -> bool:
        """Encode ``points`` in slices; False without a running loop (encode them now)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        self._entries.append(_Submission(rp, points, number))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run())
        return True

    def finish(self) -> None:
        """Encode what is left now (shutting down)."""
        if self._task is not None:
            self._task.cancel()  # (between two slices: each is queued whole)
        while self._entries:
            self._slice()

    async def _run(self) -> None:
        while self._entries:
            self._slice()
            await asyncio.sleep(0)  # a turn for everything else on the loop

    def _slice(self) -> None:
        entry = self._entries[0]
        end = entry.done + ENCODE_SLICE
        self._put(entry.points[entry.done:end], entry.rp, entry.number)
        entry.done = end
        if end >= len(entry.points):
            self._entries.popleft()
            self._settle()


def coalesce(queue: deque[Batch], batch_size: int) -> Batch:
    """The first queued batch, joined (in place) with those waiting behind it for the same
    retention policy, up to ``batch_size`` lines: while InfluxDB is slower than the
    scrapes, fewer and larger writes (each costs it a request as well as its points);
    and what came within the flush interval."""
    first = queue[0]
    if len(queue) == 1:
        return first
    bodies, lines = [first.body], first.lines
    for batch in itertools.islice(queue, 1, None):
        if batch.rp != first.rp or lines + batch.lines > batch_size:
            break
        bodies.append(batch.body)
        lines += batch.lines
    if len(bodies) == 1:
        return first
    last = 0
    for _ in bodies:
        last = queue.popleft().last
    # (each body ends with a newline)
    joined = Batch(first.rp, b"".join(bodies), last, lines, first.at)
    queue.appendleft(joined)
    return joined


async def write_halves(write: Callable[[str, bytes], Awaitable[bytes]], rp: str, body: bytes,
                       exc: InfluxError, metrics: WriterMetrics) -> bytes:
    """Isolate the lines InfluxDB refuses (``exc``, for the whole ``body``): halves,
    written with ``write``, recursively down to single lines, dropped and counted. Returns
    what is left when InfluxDB went away half-way (the first half is done)."""
    lines = body.splitlines(keepends=True)
    if len(lines) <= 1:
        reason = "unreadable_response" if exc.status is None else "rejected_by_influxdb"
        metrics.drop(len(lines), reason, str(exc))
        return b""
    middle = len(lines) // 2
    first, second = b"".join(lines[:middle]), b"".join(lines[middle:])
    left = await write(rp, first)
    if left:
        return left + second
    return await write(rp, second)


class WriteHealth:
    """Whether InfluxDB takes writes, since when not, and why (for /healthz and the log:
    one warning when an outage begins, one line when it ends)."""

    def __init__(self) -> None:
        self.last_error = ""
        self.failing_since: float | None = None  # monotonic: writes fail since then
        self._outage = False

    def failed(self, exc: InfluxError) -> None:
        self.last_error = str(exc)
        if self.failing_since is None:
            self.failing_since = perf_counter()
        if exc.retryable and not self._outage:
            self._outage = True
            log.warning("InfluxDB does not take writes (%s): keeping batches on disk and "
                        "retrying with backoff", exc)

    def worked(self, partial: bool) -> None:
        self.failing_since = None
        if self._outage:
            self._outage = False
            log.info("InfluxDB takes writes again: writing what waited on disk")
        if not partial:
            self.last_error = ""


class Batches:
    """The encoded batches waiting in memory, oldest first, with their bytes and lines."""

    def __init__(self) -> None:
        self.queue: deque[Batch] = deque()
        self.bytes = 0
        self.lines = 0
        self.full = asyncio.Event()  # set by the writer once a whole batch waits

    def __len__(self) -> int:
        return len(self.queue)

    def __iter__(self) -> Iterator[Batch]:
        return iter(self.queue)

    def append(self, batch: Batch) -> None:
        self.queue.append(batch)
        self.bytes += len(batch.body)
        self.lines += batch.lines

    def popleft(self) -> Batch:
        batch = self.queue.popleft()
        self.bytes -= len(batch.body)
        self.lines -= batch.lines
        return batch

    def shrink(self, batch: Batch, left: bytes) -> None:
        """``batch`` is now what is left of it after a write that stopped half-way."""
        lines = left.count(b"\n")
        self.bytes -= len(batch.body) - len(left)
        self.lines -= batch.lines - lines
        batch.body, batch.lines = left, lines

    async def gather(self, interval: float, batch_size: int) -> None:
        """Let the oldest batch wait up to ``interval`` for others to join it in one write
        (InfluxDB's cost, and ours, is as much per request as per point), unless a whole
        batch waits already."""
        remaining = self.queue[0].at + interval - monotonic() if self.queue else 0.0
        if remaining > 0 and self.lines < batch_size:
            self.full.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.full.wait(), remaining)


class Writer:
    """Accepts points from the scrape loops and gets them into InfluxDB."""

    def __init__(self, client: InfluxClient, buffer: DiskBuffer, metrics: WriterMetrics,
                 batch_size: int = 5000, max_backoff: float = 30.0,
                 max_queue_bytes: int = 64 * 1024 * 1024,
                 on_written: Callable[[str, bytes], None] | None = None,
                 flush_interval: float = 0.0) -> None:
        self.client = client
        self.buffer = buffer
        self.metrics = metrics
        self.batch_size = batch_size
        self.max_backoff = max_backoff
        self.max_queue_bytes = max_queue_bytes
        self.on_written = on_written  # told of every body stored (late points heal)
        self.flush_interval = flush_interval  # how long a batch may wait for others
        self._encoder = LineEncoder()
        self._queue = Batches()
        self._deferred = Deferred(self._queue_points, self._settle)
        self._wake = asyncio.Event()
        self.ready = False  # until set-up has made the database (a write before: a 404)
        self.health = WriteHealth()
        self._submitted = 0
        self.settled = 0  # the last submission of which nothing waits (stored or dropped)
        self._update_gauges()

    def submit(self, points: Sequence[Point], rp: str = "") -> int | None:
        """Queue points for writing (encoded now, in batches of ``batch_size``). Returns
        their number (stored once ``settled`` reaches it); None when none were queued.

        A submission of over ``ENCODE_SLICE`` points (a target churning series: every
        point a new tag set) is encoded by a task instead, a slice per turn of the event
        loop, so that it never holds the loop; later submissions wait behind it, in order."""
        self._submitted += 1
        if ((self._deferred or len(points) > ENCODE_SLICE)
                and self._deferred.add(rp, points, self._submitted)):
            return self._submitted
        return self._submitted if self._queue_points(points, rp, self._submitted) else None

    def _queue_points(self, points: Sequence[Point], rp: str, number: int) -> bool:
        queued = False
        for start in range(0, len(points), self.batch_size):
            body = self._encoder.encode(points[start:start + self.batch_size])
            if not body:
                continue
            lines = body.count(b"\n")
            self.metrics.submitted.inc(lines)
            if self._queue.bytes + len(body) > self.max_queue_bytes:
                # Neither InfluxDB nor the disk keeps up: refuse the newest, never a batch
                # the writer may be working on.
                self.metrics.drop(lines, "queue_full",
                                  f"write queue over {self.max_queue_bytes} bytes")
                continue
            self._queue.append(Batch(rp, body, number, lines, monotonic()))
            queued = True
        self.metrics.queued_bytes.set(self._queue.bytes)
        self._wake.set()
        if self._queue.lines >= self.batch_size:
            self._queue.full.set()  # (a whole batch: written without lingering)
        return queued

    def _settle(self) -> None:
        # Numbers are not kept on disk: nothing counts as settled while the disk holds any.
        if not len(self.buffer):
            self.settled = self._queue.queue[0].last - 1 if self._queue else (
                self._deferred.first() - 1 if self._deferred else self._submitted)

    def set_ready(self) -> None:
        """The database exists: start writing, buffered batches first."""
        self.ready = True
        self._wake.set()

    @property
    def backlogged(self) -> bool:
        """Over half the memory queue waits: InfluxDB takes points more slowly than they
        come (the scrape loops then put scrapes off rather than drop points later)."""
        return self._queue.bytes > self.max_queue_bytes // 2

    @property
    def pending(self) -> int:
        """Batches not yet written: queued in memory plus buffered on disk."""
        return len(self._queue) + len(self.buffer) + len(self._deferred)

    async def run(self) -> None:
        """Write for ever: queued batches directly while nothing waits on disk, else via
        the disk buffer, oldest first, with backoff while InfluxDB is away."""
        backoff = Backoff(0.5, self.max_backoff)
        while True:
            if not self._queue and not (self.ready and len(self.buffer)):
                self._wake.clear()
                await self._wake.wait()
                continue
            if self.flush_interval and self.ready and not len(self.buffer):
                await self._queue.gather(self.flush_interval, self.batch_size)
            if await self._step():
                backoff.reset()
            else:
                await self._pause(backoff.next_delay())

    async def _step(self) -> bool:
        """One unit of work; False when InfluxDB did not take it (back off)."""
        if self.ready and not len(self.buffer) and self._queue:
            batch = coalesce(self._queue.queue, self.batch_size)
            left = await self._write(batch.rp, batch.body)
            if left:
                self._queue.shrink(batch, left)
                await self._spill()  # keep it (and what follows) on disk, in order
                return False
            self._unqueue()
            self._settle()
            return True
        await self._spill()  # behind what already waits on disk: order is kept
        if not self.ready:
            return True
        entry = await asyncio.to_thread(self.buffer.peek)
        if entry is None:
            return True
        left = await self._write(entry.rp, entry.body)
        if left:
            if left != entry.body:
                await asyncio.to_thread(self.buffer.rewrite, entry, left)
            return False
        await asyncio.to_thread(self.buffer.remove, entry)
        self._update_gauges()
        self._settle()
        return True

    async def _pause(self, seconds: float) -> None:
        """Back off, moving batches that arrive meanwhile to disk (memory stays small)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (remaining := deadline - loop.time()) > 0:
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except TimeoutError:
                return
            await self._spill()

    def _unqueue(self) -> Batch:
        batch = self._queue.popleft()
        self.metrics.queued_bytes.set(self._queue.bytes)
        return batch

    async def _spill(self) -> None:
        """Move every queued batch to the disk buffer (worker thread)."""
        while self._queue:
            # Out of the queue first: if this task is cancelled while the thread writes,
            # the batch is on disk once, not also still queued.
            batch = self._unqueue()
            try:
                dropped = await asyncio.to_thread(self.buffer.push, batch.rp, batch.body)
            except OSError as exc:  # the disk failed: the batch cannot be kept
                self.metrics.drop(batch.body.count(b"\n"), "buffer_error", f"disk buffer: {exc}")
                continue
            if dropped:
                self.metrics.dropped.labels("buffer_full").inc(dropped)
            self._update_gauges()

    async def _write(self, rp: str, body: bytes) -> bytes:
        """Write one body. Returns what is left to try again later: b"" when InfluxDB
        stored it (bad lines isolated, dropped and counted)."""
        started = perf_counter()
        try:
            result = await self.client.write(body, rp=rp or None)
        except InfluxError as exc:
            self.health.failed(exc)
            if exc.retryable:
                self.metrics.errors.labels("retryable").inc()
                return body
            self.metrics.errors.labels("refused_batch").inc()
            return await write_halves(self._write, rp, body, exc, self.metrics)
        finally:
            self.metrics.duration.observe(perf_counter() - started)
        self.health.worked(result.partial)
        lines = body.count(b"\n")
        if result.partial:
            self.metrics.errors.labels("partial").inc()
            dropped = min(result.dropped_points, lines)
            self.metrics.drop(dropped, "rejected_by_influxdb", result.dropped_message)
            lines -= dropped
        self.metrics.points.inc(lines)
        if self.on_written is not None:
            self.on_written(rp, body)
        return b""

    def _update_gauges(self) -> None:
        self.metrics.buffer_bytes.set(self.buffer.size_bytes)
        self.metrics.buffer_batches.set(len(self.buffer))

    async def flush(self, timeout: float) -> None:
        """Before shutting down: write what can be in ``timeout``; the rest stays on disk."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._deferred.finish()
        while self.ready and self.pending and loop.time() < deadline:
            if not await self._step():  # (each step is bounded by the client's timeout)
                break
        await self._spill()
        self._update_gauges()


def tally(writer: Writer) -> dict[str, float]:
    """Points handed in, written, dropped (by reason) and waiting on disk, this process."""
    metrics = writer.metrics
    out = {"submitted": _total(metrics.submitted), "written": _total(metrics.points),
           "buffered_points": float(writer.buffer.points)}
    for family in metrics.dropped.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                out["dropped_" + sample.labels["reason"]] = sample.value
    return out


def _total(counter: Counter) -> float:
    """An unlabelled counter's value, through prometheus_client's public collect()."""
    return sum(sample.value for family in counter.collect() for sample in family.samples
               if sample.name.endswith("_total"))
