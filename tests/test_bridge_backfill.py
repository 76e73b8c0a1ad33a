"""Backfill: raw points made by the deriver from real exposition text -> the backfill
command (a process) -> exact hourly and daily percentiles and trends in a real InfluxDB."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from promflux.bridge.analyze.derive import TargetDeriver
from promflux.bridge.analyze.quantile import normalize, quantile
from promflux.bridge.ingest.exposition import parse
from promflux.bridge.store.lineprotocol import encode_points

from .conftest import ROOT

BUCKETS = (0.05, 0.1, 0.2, 0.4, 0.8)


def service_histogram(baseline_at: float):
    """A service's latency histogram and a deriver that has taken its baseline scrape."""
    registry = CollectorRegistry()
    hist = Histogram("http_request_duration_seconds", "x", ["service", "route", "method",
                                                              "status"], buckets=BUCKETS,
                     registry=registry)
    deriver = TargetDeriver("svc")
    deriver.derive(parse(generate_latest(registry).decode(), deriver.cache), baseline_at)
    return registry, hist.labels("svc", "/x", "GET", "200"), deriver


def create_database(influxdb, name: str) -> None:
    """The database and the bridge's retention policies, as set-up makes them."""
    influxdb.query(f'CREATE DATABASE "{name}"')
    for rp, duration in (("raw_7d", "7d"), ("hourly_30d", "30d"), ("daily_90d", "90d")):
        influxdb.query(f'CREATE RETENTION POLICY "{rp}" ON "{name}" DURATION {duration} '
                       f'REPLICATION 1{" DEFAULT" if rp == "raw_7d" else ""}')


def backfill(influxdb, tmp_path, database: str, start_s: int) -> subprocess.CompletedProcess:
    """The backfill command (a process) from ``start_s`` on, for ``database``."""
    config = tmp_path / "bridge.yml"
    config.write_text(f"influxdb:\n  url: {influxdb.url}\n  database: {database}\ntargets:\n"
                      "  - service: svc\n    url: http://127.0.0.1:1/metrics\n")
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start_s))
    return subprocess.run([sys.executable, "-m", "promflux.bridge", "--config", str(config),
                           "--backfill", start], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_backfill_makes_exact_rollups_and_trends(influxdb, tmp_path):
    now = int(time.time())
    first_hour = now - now % 3600 - 3 * 3600  # three complete past hours
    registry, child, deriver = service_histogram(first_hour - 60)
    # Hour k: 100 requests all in one bucket, (0.05, 0.1], then (0.1, 0.2], then (0.2, 0.4],
    # four scrapes an hour. Exact hourly p95: lower + width * 0.95.
    expected = {}
    points = []
    for k, value in enumerate((0.07, 0.15, 0.3)):
        hour = first_hour + k * 3600
        for quarter in range(4):
            for _ in range(25):
                child.observe(value)
            text = generate_latest(registry).decode()
            points += deriver.derive(parse(text, deriver.cache), hour + 900 * quarter + 899)
        lower = max(b for b in (0.0, *BUCKETS) if b < value)
        upper = min(b for b in BUCKETS if b > value)
        expected[hour] = 1000 * (lower + (upper - lower) * 0.95)
    create_database(influxdb, "backfill")
    assert influxdb.write("backfill", encode_points(points)).status_code == 204

    done = backfill(influxdb, tmp_path, "backfill", first_hour)
    assert done.returncode == 0, done.stderr
    assert "backfilled 4 hours" in done.stdout  # three past hours and the current one

    hourly = influxdb.query('SELECT "p95_ms", "requests", "latency_sum_ms" FROM "hourly_30d".'
                            '"performance_metrics" WHERE "endpoint" = \'/x\'', db="backfill")
    rows = {t // 1000: (p95, requests, latency) for t, p95, requests, latency
            in hourly[0]["values"]}
    for hour, p95 in expected.items():
        assert rows[hour][0] == pytest.approx(p95)
        assert rows[hour][1] == 100
    trends = influxdb.query('SELECT * FROM "daily_90d"."performance_trends" WHERE '
                            '"endpoint" = \'/x\' AND "period" = \'hour\'', db="backfill")
    columns = trends[0]["columns"]
    by_hour = {row[0] // 1000: dict(zip(columns, row, strict=True))
               for row in trends[0]["values"]}
    last = by_hour[first_hour + 2 * 3600]
    assert last["p95_change_prev_percent"] == pytest.approx(
        100 * (expected[first_hour + 7200] - expected[first_hour + 3600])
        / expected[first_hour + 3600])
    assert last["p95_ms_slope_7d_points"] == 3
    assert last["p95_ms_slope_7d_per_day"] == pytest.approx(
        _least_squares([(k * 3600, expected[first_hour + k * 3600]) for k in range(3)]))
    day = first_hour - first_hour % 86400
    daily = influxdb.query('SELECT "p95_ms", "requests" FROM "daily_90d".'
                           '"performance_metrics" WHERE "endpoint" = \'/x\'', db="backfill")
    day_rows = {t // 1000: (p95, requests) for t, p95, requests in daily[0]["values"]}
    # Each day holds the requests of the hours in it (the three may cross midnight UTC).
    for start, (_, requests) in day_rows.items():
        assert requests == 100 * sum(1 for h in expected if start <= h < start + 86400)
    in_day = [h for h in expected if day <= h < day + 86400]
    summed: dict[float, float] = {}
    for k, value in enumerate((0.07, 0.15, 0.3)):
        if first_hour + k * 3600 in in_day:
            for le in (*BUCKETS, float("inf")):
                if le >= value:
                    summed[le] = summed.get(le, 0.0) + 100
    if len(in_day) == 3:  # the three hours fall in one UTC day: the day's p95 is exact too
        assert day_rows[day][0] == pytest.approx(
            1000 * quantile(0.95, normalize(summed.items())))


def _least_squares(points):
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    return (sum((t - mt) * (v - mv) for t, v in points)
            / sum((t - mt) ** 2 for t, _ in points) * 86400)


def test_late_points_heal_the_rollups_of_their_hour_and_day(influxdb, tmp_path):
    from promflux.bridge.store.buffer import DiskBuffer

    from .conftest import Server, free_port, wait_for

    now = int(time.time())
    hour = now - now % 3600 - 30 * 3600  # a complete hour of a complete day
    registry, child, deriver = service_histogram(hour - 60)
    on_time, late = [], []
    for quarter in range(4):  # fast in the first half hour, slow in the second
        for _ in range(50):
            child.observe(0.07 if quarter < 2 else 0.3)
        points = deriver.derive(parse(generate_latest(registry).decode(), deriver.cache),
                                hour + 900 * quarter + 899)
        (on_time if quarter < 2 else late).extend(points)
    create_database(influxdb, "heal")
    assert influxdb.write("heal", encode_points(on_time)).status_code == 204
    config = tmp_path / "bridge.yml"
    port = free_port()
    config.write_text(f"influxdb:\n  url: {influxdb.url}\n  database: heal\n"
                      f"buffer:\n  path: {tmp_path / 'buffer'}\nlisten: 127.0.0.1:{port}\n"
                      "targets:\n  - service: svc\n    url: http://127.0.0.1:1/metrics\n")
    # The hour and its day were rolled up with only the first half (as the scheduled jobs
    # did), then the second half sat in the buffer through an outage.
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(hour))
    end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(hour + 3600))
    subprocess.run([sys.executable, "-m", "promflux.bridge", "--config", str(config),
                    "--backfill", start, end], cwd=ROOT, check=True, capture_output=True,
                   timeout=120)

    def rows(rp: str) -> tuple:
        found = influxdb.query(f'SELECT "requests", "p95_ms", "error_rate_percent" FROM "{rp}".'
                               '"performance_metrics" WHERE "endpoint" = \'/x\'', db="heal")
        return tuple(found[0]["values"][0][1:]) if found else ()

    assert rows("hourly_30d")[0] == 100 and rows("daily_90d")[0] == 100  # stale
    DiskBuffer(tmp_path / "buffer", 1 << 24).push("raw_7d", encode_points(late))
    bridge = Server([sys.executable, "-m", "promflux.bridge", "--config", str(config)], port,
                    ready_path="/healthz")
    # The truth, from the raw points: 100 requests in (0.05, 0.1], 100 in (0.2, 0.4].
    summed = {0.05: 0.0, 0.1: 100.0, 0.2: 100.0, 0.4: 200.0, 0.8: 200.0, float("inf"): 200.0}
    p95 = 1000 * quantile(0.95, normalize(summed.items()))

    def whole(row: tuple) -> bool:  # the counts and the percentiles both redone
        return row[:1] == (200,) and row[1] is not None and abs(row[1] - p95) < 1e-6

    try:
        healed = wait_for(lambda: (rows("hourly_30d"), rows("daily_90d"), bridge.output()),
                          lambda r: whole(r[0]) and whole(r[1])
                          and "rolled up 1 hours again after late points" in r[2], timeout=60)
    finally:
        bridge.stop()
    assert healed[0] == pytest.approx((200, p95, 0.0))
    assert healed[1] == pytest.approx((200, p95, 0.0))


def test_rollup_rows_of_several_instances_agree_with_their_own_counts(influxdb, tmp_path):
    """Two instances of one service, each with its own latency and errors: every hourly
    row's ratios and percentiles are those of its own counts (instance tag and all), and
    the service's trend is of both instances together."""
    now = int(time.time())
    hour = now - now % 3600 - 2 * 3600
    points, truth = [], {}
    for instance, value, errors in (("a", 0.07, 5), ("b", 0.3, 45)):
        registry = CollectorRegistry()
        hist = Histogram("http_request_duration_seconds", "x",
                         ["service", "route", "method", "status"], buckets=BUCKETS,
                         registry=registry)
        deriver = TargetDeriver("svc", labels={"instance": instance})
        deriver.derive(parse(generate_latest(registry).decode(), deriver.cache), hour - 60)
        for quarter in range(4):
            for i in range(25):
                hist.labels("svc", "/x", "GET", "500" if quarter * 25 + i < errors
                            else "200").observe(value)
            points += deriver.derive(parse(generate_latest(registry).decode(), deriver.cache),
                                     hour + 900 * quarter + 899)
        truth[instance] = (100, errors, value)
    create_database(influxdb, "instances")
    assert influxdb.write("instances", encode_points(points)).status_code == 204
    done = backfill(influxdb, tmp_path, "instances", hour)
    assert done.returncode == 0, done.stderr

    found = influxdb.query(
        'SELECT "requests", "errors", "error_rate_percent", "p95_ms" FROM "hourly_30d".'
        f'"performance_metrics" WHERE time = {hour}s GROUP BY *', db="instances")
    rows = {(s["tags"].get("instance"), s["tags"]["endpoint"]): s["values"][0][1:]
            for s in found}
    for instance, (requests, errors, value) in truth.items():
        for endpoint in ("/x", "_all"):
            got = rows[instance, endpoint]
            assert got[:2] == [requests, errors], (instance, endpoint, got)
            assert got[2] == pytest.approx(100 * errors / requests)  # its own counts
            lower = max(b for b in (0.0, *BUCKETS) if b < value)
            assert lower * 1000 < got[3] <= min(b for b in BUCKETS if b > value) * 1000
    assert not [key for key in rows if key[0] is None]  # no row without its instance

    trend = influxdb.query('SELECT "requests", "error_rate_percent", "p95_ms" FROM '
                           '"daily_90d"."performance_trends" WHERE "endpoint" = \'_all\' AND '
                           f"\"period\" = 'hour' AND time = {hour}s", db="instances")
    requests, error_rate, p95 = trend[0]["values"][0][1:]
    assert (requests, error_rate) == (200, pytest.approx(25.0))
    # Both instances together: half the requests at 0.07 s, half at 0.3 s: the p95 lies in
    # (0.2, 0.4], 90 % of the way through the 0.3 s requests' bucket.
    assert p95 == pytest.approx(1000 * (0.2 + 0.2 * 0.9))


def test_backfill_reaches_an_influxdb_behind_tls_with_the_configured_ca(influxdb, tmp_path):
    """InfluxDB behind Debian's nginx on https: the backfill command uses the bridge's own
    client, so the configured CA is trusted, and without it the certificate is refused."""
    import shutil

    from .conftest import free_port, wait_for
    from .test_bridge_targets import make_certificates

    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    ca, cert, key = make_certificates(tmp_path)
    port = free_port()
    (tmp_path / "logs").mkdir()
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/logs/error.log;\n"
        "events {}\nhttp {\n"
        f"  access_log off;\n  client_body_temp_path {tmp_path};\n"
        f"  proxy_temp_path {tmp_path};\n"
        f"  server {{\n    listen 127.0.0.1:{port} ssl;\n"
        f"    ssl_certificate {cert};\n    ssl_certificate_key {key};\n"
        f"    location / {{ proxy_pass {influxdb.url}; }}\n  }}\n}}\n")
    server = subprocess.Popen([nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"),
                               "-g", "daemon off;"], stderr=subprocess.PIPE)
    try:
        import httpx

        wait_for(lambda: _answers(httpx, f"https://127.0.0.1:{port}/ping", ca),
                 lambda ok: ok, timeout=20)
        hour = int(time.time()) // 3600 * 3600 - 3600
        create_database(influxdb, "tls_backfill")
        start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(hour))

        def run(tls: str) -> subprocess.CompletedProcess:
            config = tmp_path / "bridge.yml"
            config.write_text(f"influxdb:\n  url: https://127.0.0.1:{port}\n"
                              f"  database: tls_backfill\n{tls}"
                              "targets:\n  - service: svc\n    url: http://127.0.0.1:1/m\n")
            return subprocess.run([sys.executable, "-m", "promflux.bridge", "--config",
                                   str(config), "--backfill", start], cwd=ROOT,
                                  capture_output=True, text=True, timeout=120)

        trusted = run(f"  tls:\n    ca_file: {ca}\n")
        untrusted = run("")
    finally:
        server.terminate()
        server.wait(10)
    assert trusted.returncode == 0, trusted.stderr
    assert "backfilled 2 hours" in trusted.stdout
    assert untrusted.returncode == 1
    assert "certificate" in untrusted.stderr.lower(), untrusted.stderr


def _answers(httpx, url: str, ca: str) -> bool:
    try:
        return httpx.get(url, verify=ca, timeout=1).status_code == 204
    except httpx.HTTPError:
        return False
