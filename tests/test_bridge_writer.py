"""The writer against a real influxd: bad lines isolated, partial writes counted, answers
that cannot be read never wedge it, a failing disk never stops it; every point submitted
is written or counted as dropped."""

from __future__ import annotations

import asyncio
import shutil

from prometheus_client import CollectorRegistry
from promflux.bridge.store.buffer import DiskBuffer
from promflux.bridge.store.influx import InfluxClient
from promflux.bridge.store.writer import ENCODE_SLICE, Writer, WriterMetrics


async def until(condition, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


class Harness:
    """A ready writer on its own database, its task running."""

    def __init__(self, influxdb, database: str, buffer_dir, batch_size: int = 5000,
                 flush_interval: float = 0.0) -> None:
        self.influxdb = influxdb
        self.database = database
        influxdb.query(f'CREATE DATABASE "{database}"')
        self.client = InfluxClient(influxdb.url, database)
        self.registry = CollectorRegistry()
        self.writer = Writer(self.client, DiskBuffer(buffer_dir, 1 << 22),
                             WriterMetrics(self.registry), batch_size=batch_size, max_backoff=1,
                             flush_interval=flush_interval)
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Harness:
        self.task = asyncio.create_task(self.writer.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        await self.client.close()

    def written(self) -> float:
        return self.registry.get_sample_value("promflux_bridge_points_written_total") or 0.0

    def dropped(self, reason: str) -> float:
        return self.registry.get_sample_value("promflux_bridge_points_dropped_total",
                                              {"reason": reason}) or 0.0

    def count(self, measurement: str = "m") -> int:
        rows = self.influxdb.query(f'SELECT count("v") FROM "{measurement}"', db=self.database)
        return rows[0]["values"][0][1] if rows else 0


def points(n: int, start: int = 0, **tags: str) -> list:
    return [("m", {"k": "a", **tags}, {"v": float(i)}, 1000 + i) for i in range(start, start + n)]


def test_a_line_influxdb_refuses_is_isolated_and_the_rest_written(influxdb, tmp_path):
    async def go():
        h = Harness(influxdb, "w_isolate", tmp_path)
        # A line InfluxDB cannot parse, in a batch a restarted bridge finds on disk (the
        # encoder never writes one; a damaged file can hold anything).
        h.writer.buffer.push("", h.writer._encoder.encode(points(99)) + b"m,k=a v=1.0.0 5000\n")
        async with h:
            h.writer.set_ready()
            await until(lambda: h.writer.pending == 0)
            return h.written(), h.dropped("rejected_by_influxdb"), h.count()

    written, dropped, stored = asyncio.run(go())
    assert (written, dropped, stored) == (99, 1, 99)


def test_partial_writes_count_what_influxdb_dropped(influxdb, tmp_path):
    async def go():
        h = Harness(influxdb, "w_partial", tmp_path)
        # "v" is a float field: the integer values a damaged batch holds conflict with it.
        influxdb.write("w_partial", b"m,k=a v=0.5 500\n")
        h.writer.buffer.push("", b"m,k=a v=1i 3000\nm,k=a v=2i 3001\nm,k=a v=3i 3002\n"
                                 b"m,k=a v=4.0 3003\n")
        async with h:
            h.writer.set_ready()
            h.writer.submit(points(2))
            await until(lambda: h.writer.pending == 0)
            return h.written(), h.dropped("rejected_by_influxdb"), h.count()

    written, dropped, stored = asyncio.run(go())
    assert (written, dropped, stored) == (3, 3, 4)  # 1 + 2 written here, 1 before


def test_an_answer_that_cannot_be_read_never_wedges_the_writer(influxdb, tmp_path):
    # InfluxDB refuses a line and echoes it in a response header; a NUL in it makes the
    # answer unreadable for the HTTP client. Once, that made the writer retry the same batch
    # for ever and nothing else reached InfluxDB.
    async def go():
        h = Harness(influxdb, "w_unreadable", tmp_path)
        good = h.writer._encoder.encode(points(10))
        h.writer.buffer.push("", good + b"m,k=a\x00b v=1.0.0 5000\n" + h.writer._encoder.encode(
            points(10, 20)))
        async with h:
            h.writer.set_ready()
            await until(lambda: h.writer.pending == 0)
            h.writer.submit(points(5, 100))  # and the next batch goes through
            await until(lambda: h.writer.pending == 0)
            return h.written(), h.dropped("unreadable_response"), h.count()

    written, dropped, stored = asyncio.run(go())
    assert (written, dropped, stored) == (25, 1, 25)


def test_a_failing_disk_drops_and_counts_but_never_stops_the_writer(influxdb, tmp_path):
    async def go():
        buffer_dir = tmp_path / "buffer"
        async with Harness(influxdb, "w_disk", buffer_dir) as h:
            # Not ready: batches go to the disk buffer, whose folder is now a plain file.
            shutil.rmtree(buffer_dir)
            buffer_dir.write_bytes(b"")
            h.writer.submit(points(7))
            await until(lambda: h.dropped("buffer_error") == 7)
            assert not h.task.done()  # the writer survived
            buffer_dir.unlink()
            buffer_dir.mkdir()
            h.writer.submit(points(4, 10))
            h.writer.set_ready()
            await until(lambda: h.writer.pending == 0)
            return h.written(), h.count()

    assert asyncio.run(go()) == (4, 4)


def test_a_full_queue_refuses_the_newest_batch_and_counts_it(influxdb, tmp_path):
    async def go():
        async with Harness(influxdb, "w_queue", tmp_path, batch_size=10) as h:
            h.writer.max_queue_bytes = 400  # a few batches of 10 lines
            h.task.cancel()  # nobody drains: the queue only fills
            h.writer.submit(points(100))
            queued = sum(b.body.count(b"\n") for b in h.writer._queue)
            return queued, h.dropped("queue_full")

    queued, dropped = asyncio.run(go())
    assert queued > 0 and dropped > 0 and queued + dropped == 100


def test_batches_that_wait_are_joined_into_fewer_writes_up_to_batch_size(influxdb, tmp_path):
    async def go():
        h = Harness(influxdb, "w_join", tmp_path, batch_size=250)
        h.writer.set_ready()
        # Six scrapes' batches queued before the writer runs (InfluxDB slower than the
        # scrapes): 100 points each, joined at most 250 lines to a write.
        for i in range(6):
            h.writer.submit(points(100, start=i * 100))
        async with h:
            await until(lambda: h.writer.pending == 0)
            writes = h.registry.get_sample_value("promflux_bridge_write_duration_seconds_count")
            return h.written(), h.count(), writes

    written, stored, writes = asyncio.run(go())
    assert (written, stored) == (600, 600)
    assert writes == 3  # 200 + 200 + 200 lines: a third batch would go over 250


def writes(h: Harness) -> float:
    return h.registry.get_sample_value("promflux_bridge_write_duration_seconds_count") or 0.0


def test_scrapes_within_the_flush_interval_share_one_write(influxdb, tmp_path):
    async def go():
        h = Harness(influxdb, "w_linger", tmp_path, flush_interval=3.0)
        h.writer.set_ready()
        async with h:
            for i in range(5):  # five scrapes, the writer given a turn after each
                h.writer.submit(points(100, start=i * 100))
                await asyncio.sleep(0)
            await until(lambda: h.writer.pending == 0)
            return h.written(), h.count(), writes(h)

    assert asyncio.run(go()) == (500, 500, 1)


def test_a_whole_batch_is_written_without_waiting_and_flush_writes_the_rest(influxdb,
                                                                               tmp_path):
    async def go():
        h = Harness(influxdb, "w_full", tmp_path, batch_size=250, flush_interval=60.0)
        h.writer.set_ready()
        async with h:
            for i in range(3):
                h.writer.submit(points(100, start=i * 100))
            # The first two batches in one write, not a minute later; the third waits.
            await until(lambda: h.writer.pending == 1 and h.count() == 200, timeout=20)
            h.task.cancel()  # shutting down, as the bridge does: the writer's task first
            await asyncio.gather(h.task, return_exceptions=True)
            await h.writer.flush(timeout=5.0)  # nothing lingers
            return h.count(), h.writer.pending, writes(h)

    assert asyncio.run(go()) == (300, 0, 2)


def test_settled_never_runs_ahead_of_what_influxdb_holds(influxdb, tmp_path):
    # An HA primary tells its standby which slots are stored from ``settled``: it must never
    # name a submission InfluxDB does not hold, through the disk buffer and split batches.
    async def go():
        h = Harness(influxdb, "w_settled", tmp_path, batch_size=10)
        h.writer.buffer.push("", h.writer._encoder.encode(points(5, 10_000)))  # a last run's
        seen: list[tuple[int, int]] = []
        async with h:
            numbers = [h.writer.submit(points(25, i * 25)) for i in range(4)]  # not ready: disk
            await asyncio.sleep(0.1)
            assert h.writer.settled == 0
            h.writer.set_ready()
            await until(lambda: h.writer.settled == 4)
            after_disk = h.count()
            expected = {}
            for i in range(4, 40):  # straight from memory, three batches each
                expected[h.writer.submit(points(25, i * 25))] = 25 * (i + 1)
            while h.writer.settled < max(expected):
                settled = h.writer.settled
                if settled in expected and (not seen or seen[-1][0] != expected[settled]):
                    seen.append((expected[settled], h.count()))
                await asyncio.sleep(0)
            return numbers, after_disk, seen, h.count()

    numbers, after_disk, seen, stored = asyncio.run(go())
    assert numbers == [1, 2, 3, 4] and after_disk == 4 * 25 + 5
    assert len(seen) > 10 and all(held + 5 <= then for held, then in seen), seen
    assert stored == 40 * 25 + 5


def test_a_large_submission_is_encoded_in_slices_and_keeps_its_order(influxdb, tmp_path):
    # A churning target's scrape: every point a new tag set. Encoded a slice per turn of the
    # loop (a ticker sees turns throughout), behind it a small submission; ``settled``
    # never names a submission before all of its points are in InfluxDB.
    async def go():
        h = Harness(influxdb, "w_slices", tmp_path)
        turns = 0  # turns of the loop that saw the large submission partly encoded

        async def ticker() -> None:
            nonlocal turns
            while True:
                encoded = h.registry.get_sample_value(
                    "promflux_bridge_points_submitted_total") or 0.0
                turns += 0 < encoded < 5 * ENCODE_SLICE
                await asyncio.sleep(0)

        async with h:
            h.writer.set_ready()
            ticking = asyncio.create_task(ticker())
            await asyncio.sleep(0)
            big = [("m", {"k": f"k{i}"}, {"v": float(i)}, 1000) for i in range(5 * ENCODE_SLICE)]
            first = h.writer.submit(big)
            second = h.writer.submit(points(10, 0, k="last"))
            assert h.writer.settled < first
            await until(lambda: h.writer.settled >= second)
            ticking.cancel()
            count = h.influxdb.query('SELECT count("v") FROM "m"', db="w_slices")
            return first, second, turns, count[0]["values"][0][1]

    first, second, turns, stored = asyncio.run(go())
    assert (first, second) == (1, 2)
    assert turns >= 3  # the loop turned between the slices
    assert stored == 5 * ENCODE_SLICE + 10


def test_flush_encodes_what_is_left_of_a_large_submission(influxdb, tmp_path):
    async def go():
        h = Harness(influxdb, "w_flush_slices", tmp_path)
        async with h:
            h.writer.set_ready()
            big = [("m", {"k": f"k{i}"}, {"v": 1.0}, 1000) for i in range(9000)]
            h.writer.submit(big)
            await asyncio.sleep(0)  # one slice encoded
            h.task.cancel()  # shutting down, as the bridge does: the writer's task first
            await asyncio.gather(h.task, return_exceptions=True)
            await h.writer.flush(timeout=30)
            return h.count(), h.writer.pending

    stored, pending = asyncio.run(go())
    assert (stored, pending) == (9000, 0)
