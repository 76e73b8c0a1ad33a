"""The InfluxDB client and schema set-up against a real influxd."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from promflux.bridge.store import rollups
from promflux.bridge.store.influx import InfluxClient, InfluxError
from promflux.bridge.store.storage import Storage


def run(coro):
    return asyncio.run(coro)


def test_setup_is_idempotent_and_alters_durations(influxdb):
    async def go():
        client = InfluxClient(influxdb.url, "setup_test")
        try:
            first = await client.setup(7 * 86400, 30 * 86400, 90 * 86400)
            again = await client.setup(7 * 86400, 30 * 86400, 90 * 86400)
            changed = await client.setup(8 * 86400, 30 * 86400, 90 * 86400)
            # A CQ an older version made (bucket rows are now the roll-up job's), and one of
            # the user's own: ours is dropped, theirs is left alone.
            for name in ("promflux_hourly_30d_latency_buckets", "users_own"):
                await client.query(
                    f'CREATE CONTINUOUS QUERY "{name}" ON "setup_test" BEGIN SELECT '
                    'sum("count") AS "count" INTO "setup_test"."hourly_30d"."latency_buckets" '
                    'FROM "setup_test"."raw_7d"."latency_buckets" GROUP BY time(1h), * END')
            stale = await client.setup(8 * 86400, 30 * 86400, 90 * 86400)
            return first, again, changed + stale
        finally:
            await client.close()

    first, again, changed = run(go())
    assert "created retention policy raw_7d" in first
    assert sum(1 for d in first if "continuous query" in d) == 2 * len(rollups.HOURLY_ROLLUPS)
    assert not any("latency_buckets" in d for d in first)  # summed by the roll-up job
    assert again == []
    assert changed == ["altered retention policy raw_7d",
                       "dropped continuous query promflux_hourly_30d_latency_buckets"]
    policies = {row[0]: row for row in influxdb.query(
        'SHOW RETENTION POLICIES ON "setup_test"')[0]["values"]}
    assert policies["raw_7d"][1] == "192h0m0s" and policies["raw_7d"][4] is True
    assert policies["hourly_30d"][1] == "720h0m0s"
    assert policies["daily_90d"][1] == "2160h0m0s"
    cqs = [s for s in influxdb.query("SHOW CONTINUOUS QUERIES") if s["name"] == "setup_test"]
    names = {row[0] for row in cqs[0]["values"]}
    assert "promflux_hourly_30d_status_codes" in names and "users_own" in names
    assert "promflux_hourly_30d_latency_buckets" not in names
    assert "promflux_daily_90d_performance_metrics" in names


def test_write_statuses(influxdb):
    async def go():
        client = InfluxClient(influxdb.url, "writes")
        missing = InfluxClient(influxdb.url, "no_such_db")
        dead = InfluxClient("http://127.0.0.1:9", "writes", timeout=2)
        try:
            await client.query('CREATE DATABASE "writes"')
            ok = await client.write(b"m v=1.0 1000\n")
            partial = await client.write(b"m v=2.0 2000\nm v=\"text\" 3000\n")
            with pytest.raises(InfluxError) as not_found:
                await missing.write(b"m v=1.0 1000\n")
            with pytest.raises(InfluxError) as unreachable:
                await dead.write(b"m v=1.0 1000\n")
            return ok, partial, not_found.value, unreachable.value
        finally:
            for c in (client, missing, dead):
                await c.close()

    ok, partial, not_found, unreachable = run(go())
    assert not ok.partial
    assert partial.partial and "field type conflict" in partial.dropped_message
    # The database is missing: the server's set-up, not the batch, so it is kept for later.
    assert not_found.status == 404 and not_found.retryable and not not_found.batch_error
    assert unreachable.retryable
    values = influxdb.query('SELECT "v" FROM "m"', db="writes")[0]["values"]
    assert values == [[1000, 1.0], [2000, 2.0]]  # the valid point of the partial write kept


def bucket_row(cumulative: dict[float, float]) -> dict[str, float]:
    """Fields of one stored bucket row, every bucket written: each bucket's own requests."""
    out, below = {}, 0.0
    for le in sorted(cumulative):
        out["le_+Inf" if le == float("inf") else f"le_{le!r}"] = float(cumulative[le] - below)
        below = cumulative[le]
    return out


def test_hourly_and_daily_bucket_rows_give_the_exact_p95(influxdb, tmp_path):
    """Four 15-minute intervals of bucket increases -> the roll-up job's hourly row -> its
    daily row: the same p95 as the buckets of the whole hour, which a mean of the four p95s
    would not give."""
    from promflux.bridge.analyze.quantile import normalize, quantile
    from promflux.bridge.jobs.rollup import run_period
    from promflux.bridge.store.lineprotocol import encode_points

    from .influx import cumulative_buckets

    intervals = [  # cumulative-by-le increases per interval
        {0.1: 90, 0.5: 100, 1.0: 100, float("inf"): 100},
        {0.1: 10, 0.5: 20, 1.0: 40, float("inf"): 40},
        {0.1: 50, 0.5: 55, 1.0: 60, float("inf"): 60},
        {0.1: 0, 0.5: 0, 1.0: 0, float("inf"): 0},
    ]
    day = 1_700_000_000 - 1_700_000_000 % 86400
    hour = day + 7200  # an hour boundary, in seconds
    tags = {"service": "api", "endpoint": "/x", "method": "GET"}
    points = [("latency_buckets", tags, bucket_row(buckets), (hour + 900 * i) * 1000)
              for i, buckets in enumerate(intervals)]

    from prometheus_client import CollectorRegistry
    from promflux.bridge.store.buffer import DiskBuffer
    from promflux.bridge.store.writer import Writer, WriterMetrics

    registry = CollectorRegistry()

    async def go():
        client = InfluxClient(influxdb.url, "rollup")
        # Through the bridge's writer, as the scheduled jobs write: counted like any point.
        writer = Writer(client, DiskBuffer(tmp_path / "buffer", 1 << 24),
                        WriterMetrics(registry))
        writer.set_ready()
        task = asyncio.create_task(writer.run())
        storage = Storage(client, client.database, writer)
        try:
            await client.setup(100 * 365 * 86400, 100 * 365 * 86400, 100 * 365 * 86400)
            await client.write(encode_points(points), rp=rollups.RAW)
            await run_period(storage, hour, 3600, rollups.HOURLY)
            await run_period(storage, day, 86400, rollups.DAILY, source_rp=rollups.HOURLY)
        finally:
            task.cancel()
            await client.close()

    run(go())
    counted = registry.get_sample_value
    stored = sum(len(series["values"]) for rp in (rollups.HOURLY, rollups.DAILY)
                 for series in influxdb.query(f'SELECT * FROM "rollup"."{rp}"./.*/',
                                              db="rollup"))
    assert stored > 0
    assert counted("promflux_bridge_points_submitted_total") == stored
    assert counted("promflux_bridge_points_written_total") == stored
    want = {0.1: 150, 0.5: 175, 1.0: 200, float("inf"): 200}
    for rp, at in ((rollups.HOURLY, hour), (rollups.DAILY, day)):
        rows = influxdb.query(f'SELECT * FROM "rollup"."{rp}"."latency_buckets"', db="rollup")
        assert len(rows) == 1 and len(rows[0]["values"]) == 1  # one row per endpoint
        record = dict(zip(rows[0]["columns"], rows[0]["values"][0], strict=True))
        assert record["time"] == at * 1000 and record["endpoint"] == "/x"
        # the raw rows' field names, each bucket's own requests summed
        assert {k: v for k, v in record.items() if k.startswith("le_")} == {
            "le_0.1": 150, "le_0.5": 25, "le_1.0": 25, "le_+Inf": 0}
        summed = cumulative_buckets(influxdb.query(
            f'SELECT sum(/^le_/) FROM "rollup"."{rp}"."latency_buckets"', db="rollup"))
        assert summed == want
    whole_hour = quantile(0.95, normalize(want.items()))
    assert whole_hour == pytest.approx(0.5 + 0.5 * (190 - 175) / 25)  # 0.8 s
    p95 = influxdb.query(f'SELECT "p95_ms" FROM "rollup"."{rollups.DAILY}"."performance_metrics"'
                         ' WHERE "endpoint" = \'/x\'', db="rollup")
    assert p95[0]["values"][0][1] == pytest.approx(whole_hour * 1000)
    per_interval = [quantile(0.95, normalize(b.items())) for b in intervals]
    mean_of_p95 = sum(p for p in per_interval if p is not None) / 3
    assert abs(mean_of_p95 - whole_hour) > 0.05  # why the roll-up keeps buckets


def test_rollup_job_writes_exact_hourly_percentiles_and_mean(influxdb):
    from promflux.bridge.analyze.quantile import normalize, quantile
    from promflux.bridge.jobs.rollup import run_period
    from promflux.bridge.store.lineprotocol import encode_points

    hour = 1_700_006_400  # an hour boundary
    inf = float("inf")
    per_endpoint = {"/a": [{0.1: 8, 0.5: 10, inf: 10}, {0.1: 0, 0.5: 5, inf: 6}],
                    "/b": [{0.1: 1, 0.5: 1, inf: 4}]}
    points = []
    for endpoint, intervals in per_endpoint.items():
        for i, buckets in enumerate(intervals):
            ts = (hour + 600 * i) * 1000
            points.append(("latency_buckets", {"service": "api", "endpoint": endpoint,
                           "method": "GET"}, bucket_row(buckets), ts))
            points.append(("performance_metrics", {"service": "api", "endpoint": endpoint,
                           "method": "GET"},
                           {"requests": float(buckets[inf]), "errors": float(i),
                            "latency_sum_ms": 100.0 * buckets[inf]}, ts))

    async def go():
        client = InfluxClient(influxdb.url, "job")
        try:
            await client.setup(100 * 365 * 86400, 100 * 365 * 86400, 100 * 365 * 86400)
            await client.write(encode_points(points), rp=rollups.RAW)
            return await run_period(Storage(client, client.database), hour, 3600, rollups.HOURLY)
        finally:
            await client.close()

    assert run(go()) == 2 + 3  # two bucket rows; /a, /b and the service-wide row
    series = influxdb.query('SELECT "p95_ms", "response_time_ms", "error_rate_percent" FROM '
                            '"job"."hourly_30d"."performance_metrics" GROUP BY "endpoint"',
                            db="job")
    got = {s["tags"]["endpoint"]: s["values"][0] for s in series}
    a = quantile(0.95, normalize([(0.1, 8), (0.5, 15), (inf, 16)]))
    everything = quantile(0.95, normalize([(0.1, 9), (0.5, 16), (inf, 20)]))
    assert got["/a"] == [hour * 1000, pytest.approx(a * 1000), 100.0, 100.0 * 1 / 16]
    assert got["_all"][1] == pytest.approx(everything * 1000)
    assert got["_all"][2] == 100.0
    assert got["_all"][3] == pytest.approx(100.0 * 1 / 20)  # errors / requests, summed


async def until(condition, timeout: float = 30.0) -> None:
    """Wait for ``condition()`` on the running loop (generous: the machine may be loaded)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def test_writer_holds_points_until_setup_has_created_the_database(influxdb, tmp_path):
    from prometheus_client import CollectorRegistry
    from promflux.bridge.store.buffer import DiskBuffer
    from promflux.bridge.store.writer import Writer, WriterMetrics

    async def go():
        client = InfluxClient(influxdb.url, "held")
        writer = Writer(client, DiskBuffer(tmp_path, 1 << 20), WriterMetrics(CollectorRegistry()))
        drain = asyncio.create_task(writer.run())
        try:
            # InfluxDB answers, but the database does not exist yet: a write would be a 404.
            writer.submit([("m", {"service": "a"}, {"v": 1.0}, 1000)], rp="")
            await until(lambda: len(writer.buffer) == 1)  # held on disk, not sent
            held = len(writer.buffer)
            await client.query('CREATE DATABASE "held"')
            writer.set_ready()
            await until(lambda: writer.pending == 0)
            writer.submit([("m", {"service": "a"}, {"v": 2.0}, 2000)], rp="")
            await until(lambda: writer.pending == 0)
            return held, writer.metrics
        finally:
            drain.cancel()
            await client.close()

    held, metrics = run(go())
    assert held == 1
    assert metrics.dropped.labels("rejected_by_influxdb")._value.get() == 0
    assert influxdb.query('SELECT "v" FROM "m"', db="held")[0]["values"] == [[1000, 1.0],
                                                                              [2000, 2.0]]


def test_a_database_made_by_someone_else_is_told_before_its_default_policy_changes(influxdb):
    influxdb.query('CREATE DATABASE "theirs"')
    assert httpx.post(influxdb.url + "/write", params={"db": "theirs"},
                      content=b"their_measurement v=1 1000000000\n").status_code == 204

    async def go() -> tuple[list[str], list[str]]:
        client = InfluxClient(influxdb.url, "theirs")
        try:
            return (await client.setup(7 * 86400, 30 * 86400, 90 * 86400),
                    await client.setup(7 * 86400, 30 * 86400, 90 * 86400))
        finally:
            await client.close()

    first, again = run(go())
    warning = first[0]
    assert warning.startswith("warning: the database theirs existed with the default "
                              "retention policy autogen; raw_7d is made its default")
    assert "kept 7 days" in warning and "older points stay in autogen" in warning
    assert again == []  # said once, when it happens
    policies = {row[0]: row[4] for row in influxdb.query(
        'SHOW RETENTION POLICIES ON "theirs"')[0]["values"]}
    assert policies == {"autogen": False, "raw_7d": True, "hourly_30d": False,
                        "daily_90d": False}
    kept = influxdb.query('SELECT "v" FROM "theirs"."autogen"."their_measurement"')
    assert [row[1] for row in kept[0]["values"]] == [1]  # their point is where it was


def test_a_database_the_bridge_creates_gets_no_warning(influxdb):
    async def go() -> list[str]:
        client = InfluxClient(influxdb.url, "ours_fresh")
        try:
            return await client.setup(7 * 86400, 30 * 86400, 90 * 86400)
        finally:
            await client.close()

    assert not any(line.startswith("warning") for line in run(go()))
