"""Ordinary misbehaviour through the real bridge and InfluxDB: stored totals equal the
true increases whatever a target answers in between."""

from __future__ import annotations

import sys
import time

import httpx
import pytest

from .conftest import Server, aiohttp_server, bridge_targets, free_port, scraped_after, wait_for
from .influx import InfluxServer
from .test_bridge_e2e import start_bridge

STORED = ('SELECT sum("requests"), max("requests") FROM "raw_7d"."performance_metrics" '
          'WHERE "service" = \'fault\' AND "endpoint" != \'_all\'')
CPU = ('SELECT max("cpu_percent") FROM "raw_7d"."resources" WHERE "service" = \'fault\'')
MODES = ["html", "empty", "cut", "cut_line", "reorder", "repeat", "cpu_back"]


@pytest.fixture()
def fault_target():
    server = aiohttp_server("tests.apps.misbehaving:app")
    yield server
    server.stop()


def _stored(influx: InfluxServer, db: str) -> tuple[float, float]:
    series = influx.query(STORED, db=db)
    return (series[0]["values"][0][1], series[0]["values"][0][2]) if series else (0.0, 0.0)


def _served(target: Server) -> dict[str, int]:
    return httpx.get(target.url + "/served").json()


def _bridge(tmp_path, influx: InfluxServer, db: str, targets: dict[str, str],
            extra: str = "", influx_extra: str = "") -> Server:
    """A real bridge scraping ``targets`` (service -> base URL) every second."""
    port = free_port()
    config = tmp_path / "bridge.yml"
    config.write_text(
        f"influxdb:\n  url: {influx.url}\n  database: {db}\n{influx_extra}"
        f"scrape:\n  interval: 1s\n  timeout: 1s\nbuffer:\n  path: {tmp_path / 'buf'}\n"
        f"listen: 127.0.0.1:{port}\n{extra}targets:\n"
        + "".join(f"  - service: {name}\n    url: {url}/metrics\n"
                  for name, url in targets.items()))
    return Server([sys.executable, "-m", "promflux.bridge", "--config", str(config)], port,
                  ready_path="/healthz")


def test_bad_answers_store_exactly_the_true_increases(tmp_path, influxdb, fault_target):
    target = fault_target
    bridge = start_bridge(tmp_path, influxdb, [("fault", target.url)], "bad_answers")
    try:
        # The first good scrape is the baseline (all counts 0 then).
        wait_for(lambda: bridge_targets(bridge.url),
                 lambda t: t.get("fault", {}).get("up", False), timeout=30)
        truth = 0
        for mode in MODES:
            truth = httpx.post(target.url + "/advance?n=20").json()["total"]
            httpx.post(target.url + f"/next?mode={mode}")
            wait_for(lambda: _served(target), lambda s, m=mode: s.get(m, 0) >= 1, timeout=30)
            truth = httpx.post(target.url + "/advance?n=20").json()["total"]
            # A good answer after the bad one, so the gap's increase is taken.
            after = _served(target).get("good", 0)
            wait_for(lambda: _served(target),
                     lambda s, a=after: s.get("good", 0) >= a + 1, timeout=30)
        since = httpx.get(target.url + "/served").json()
        assert all(since.get(m) == 1 for m in MODES), since
        scraped_after(bridge.url, time.time(), ["fault"])
        stored = wait_for(lambda: _stored(influxdb, "bad_answers"),
                          lambda v: v[0] >= truth, timeout=30)
        assert stored[0] == truth == 100 * 20 * 2 * len(MODES)
        # No point holds more than one gap's worth (40 per route: 20 before and 20 after
        # a bad answer) — never a whole counter counted again from zero.
        assert stored[1] <= 40
        status = bridge_targets(bridge.url)["fault"]
        # The HTML page, the empty page and the page cut inside a value failed as scrapes.
        assert status["failures"] == 3
        cpu = influxdb.query(CPU, db="bad_answers")
        # A float counter 1e-13 lower is rounding, not a restart: no CPU is invented.
        assert cpu and cpu[0]["values"][0][1] < 1.0
    finally:
        bridge.stop()


def _health(bridge: Server) -> tuple[int, dict]:
    response = httpx.get(bridge.url + "/healthz", timeout=10)
    return response.status_code, response.json()


def test_healthz_says_degraded_while_influxdb_is_down_or_no_target_is_up(tmp_path,
                                                                         fault_target):
    influx = InfluxServer()
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    bridge = _bridge(tmp_path, influx, "health", {"fault": fault_target.url, "gone": dead},
                     influx_extra="  unhealthy_after: 1s\n")
    try:
        # One target up, one down: healthy.
        code, health = wait_for(lambda: _health(bridge),
                                lambda h: h[1]["targets_up"] == 1 and h[0] == 200)
        assert (code, health["status"], health["problems"]) == (200, "ok", [])
        influx.stop()
        code, health = wait_for(lambda: _health(bridge), lambda h: h[0] == 503, timeout=30)
        assert health["status"] == "degraded"
        assert "InfluxDB has not taken a write" in health["problems"][0]
        influx.start()
        code, health = wait_for(lambda: _health(bridge), lambda h: h[0] == 200, timeout=30)
        assert health["problems"] == []
        fault_target.stop()  # now no target answers
        code, health = wait_for(lambda: _health(bridge), lambda h: h[0] == 503, timeout=30)
        assert health["problems"] == [
            "no target is up: all 2 failed their last scrape"]
    finally:
        bridge.stop()
        influx.close()


def test_a_histogram_that_is_not_cumulative_is_refused_never_stored_negative(tmp_path,
                                                                             influxdb):
    flat = aiohttp_server("tests.apps.misbehaving:app",
                          env={"MISBEHAVING_SHAPE": "flat", "MISBEHAVING_ROUTES": "3"})
    bridge = _bridge(tmp_path, influxdb, "flat", {"flat": flat.url})
    try:
        wait_for(lambda: bridge_targets(bridge.url),
                 lambda t: t.get("flat", {}).get("up", False), timeout=30)
        for slow in ("", "1"):
            truth = httpx.post(flat.url + f"/advance?n=7&slow={slow}").json()["total"]
            scraped_after(bridge.url, time.time(), ["flat"])
        status = wait_for(lambda: bridge_targets(bridge.url)["flat"],
                          lambda t: "refused" in t["warning"], timeout=30)
        assert "not cumulative" not in status["last_error"] and status["up"]
        assert "fewer than" in status["warning"]
        stored = wait_for(
            lambda: influxdb.query('SELECT sum("requests") FROM "raw_7d"."performance_metrics"'
                                   ' WHERE "service" = \'flat\' AND "endpoint" != \'_all\'',
                                   db="flat"),
            lambda s: bool(s) and s[0]["values"][0][1] == truth, timeout=30)
        assert stored[0]["values"][0][1] == truth == 3 * 14  # counts come from _count
        rows = influxdb.query('SELECT * FROM "raw_7d"."latency_buckets" WHERE '
                              '"service" = \'flat\'', db="flat")
        assert rows == []  # no bucket row at all: never a negative own count
        p95 = influxdb.query('SELECT count("p95_ms") FROM "raw_7d"."performance_metrics" '
                             'WHERE "service" = \'flat\'', db="flat")
        assert p95 == []  # and no percentile made from them
    finally:
        bridge.stop()
        flat.stop()


def test_an_endpoint_whose_traffic_stops_resolves_with_no_data(tmp_path, influxdb,
                                                               fault_target):
    target = fault_target
    bridge = _bridge(tmp_path, influxdb, "idle", {"fault": target.url},
                     "thresholds: {window: 4s, for: 0s, resolve: 0s, alpha: 1}\n")

    def p95_state() -> dict:
        states = httpx.get(bridge.url + "/api/status").json()["services"]["fault"]["states"]
        return next((s for s in states if s["endpoint"] == "GET /r0"
                     and s["metric"] == "p95_ms"), {})

    try:
        wait_for(lambda: bridge_targets(bridge.url),
                 lambda t: t.get("fault", {}).get("up", False), timeout=30)
        # Slow requests on /r0 for a few seconds: its p95 (0.75 s bucket) is over 500 ms.
        deadline = time.monotonic() + 30
        while p95_state().get("level", "ok") == "ok" and time.monotonic() < deadline:
            httpx.post(target.url + "/advance?n=5&slow=1")
            time.sleep(0.3)
        state = p95_state()
        assert state["level"] in ("warning", "critical") and state["value"] > 500
        # Traffic stops: once the 4 s window is empty the figure is no data, and the
        # state resolves (not left at its last value for ever).
        state = wait_for(p95_state, lambda s: s.get("level") == "ok", timeout=30)
        assert state["value"] is None
    finally:
        bridge.stop()
