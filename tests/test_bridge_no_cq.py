"""Roll-ups without continuous queries (for servers that run none): a real bridge against
the real InfluxDB creates no CQ, and its own roll-up job writes the hourly rows, counts,
bucket rows and exact percentiles alike, with write consistency and replication set."""

from __future__ import annotations

import sys
import time

import pytest
from promflux.bridge.analyze.quantile import normalize, quantile
from promflux.bridge.store.lineprotocol import encode_points

from .conftest import Server, free_port, wait_for
from .influx import cumulative_buckets


def test_the_bridge_rolls_up_the_last_hour_itself(tmp_path, influxdb):
    influxdb.query('CREATE DATABASE "nocq"')
    influxdb.query('CREATE RETENTION POLICY "raw_7d" ON "nocq" DURATION 7d REPLICATION 1 '
                   "DEFAULT")
    now = int(time.time())
    hour = now - now % 3600 - 3600  # the last complete hour
    tags = {"service": "api", "endpoint": "/x", "method": "GET"}
    intervals = [  # (requests, errors, latency sum ms, bucket fields: own requests)
        (100, 2, 9_000.0, {"le_0.05": 0, "le_0.1": 90, "le_0.25": 10}),
        (40, 0, 12_000.0, {"le_0.1": 10, "le_0.25": 0, "le_0.5": 30}),
    ]
    points = []
    for i, (requests, errors, latency, buckets) in enumerate(intervals):
        ms = (hour + 600 + 900 * i) * 1000
        points.append(("performance_metrics", tags, {
            "requests": float(requests), "errors": float(errors), "latency_sum_ms": latency},
            ms))
        points.append(("latency_buckets", tags, {k: float(v) for k, v in buckets.items()}, ms))
    assert influxdb.write("nocq", encode_points(points)).status_code == 204

    port = free_port()
    config = tmp_path / "bridge.yml"
    config.write_text(
        f"influxdb: {{url: {influxdb.url}, database: nocq, continuous_queries: false, "
        "consistency: all, replication: 1}\n"
        f"buffer: {{path: {tmp_path / 'buffer'}}}\nlisten: 127.0.0.1:{port}\n"
        "targets:\n  - {service: api, url: 'http://127.0.0.1:1/metrics'}\n")
    bridge = Server([sys.executable, "-m", "promflux.bridge", "--config", str(config)], port,
                    ready_path="/healthz")
    try:
        rows = wait_for(lambda: influxdb.query(
            'SELECT * FROM "hourly_30d"."performance_metrics" WHERE "endpoint" = \'/x\'',
            db="nocq"), lambda s: s and "p95_ms" in s[0]["columns"], timeout=30)
    finally:
        bridge.stop()
    assert not [s for s in influxdb.query("SHOW CONTINUOUS QUERIES") if s["name"] == "nocq"
                and s.get("values")]
    record = dict(zip(rows[0]["columns"], rows[0]["values"][0], strict=True))
    assert record["time"] == hour * 1000
    assert (record["requests"], record["errors"], record["latency_sum_ms"]) == (140, 2, 21_000)
    assert record["response_time_ms"] == pytest.approx(21_000 / 140)
    assert record["error_rate_percent"] == pytest.approx(100 * 2 / 140)
    summed = cumulative_buckets(influxdb.query(
        'SELECT sum(/^le_/) FROM "hourly_30d"."latency_buckets" WHERE "service" != \'\'',
        db="nocq"))
    assert summed == {0.05: 0, 0.1: 100, 0.25: 110, 0.5: 140, float("inf"): 140}
    assert record["p95_ms"] == pytest.approx(1000 * quantile(0.95, normalize(summed.items())))
    assert "Traceback" not in bridge.output()
