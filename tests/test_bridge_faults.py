"""Faults: InfluxDB down and back, the bridge killed, a target restarted or too slow."""

from __future__ import annotations

import signal
import time

import httpx
import pytest

from .conftest import aiohttp_server, scraped_after, uvicorn_server, wait_for
from .influx import InfluxServer
from .test_bridge_e2e import start_bridge, targets_json

SUM_ITEMS = ('SELECT sum("requests") FROM "raw_7d"."performance_metrics" WHERE '
             '"service" = \'admin-api\' AND "endpoint" = \'/items/{item_id}\'')


@pytest.fixture()
def own_influx():
    server = InfluxServer()
    yield server
    server.close()


def total(influx: InfluxServer, db: str) -> float:
    series = influx.query(SUM_ITEMS, db=db)
    return series[0]["values"][0][1] if series else 0


def baseline(bridge) -> None:
    wait_for(lambda: targets_json(bridge),
             lambda t: all(x["scrapes"] >= 1 and x["up"] for x in t.values()), timeout=20)


def test_influxdb_outage_and_bridge_kill_lose_nothing_scraped(tmp_path, own_influx, api):
    bridge = start_bridge(tmp_path, own_influx, [("admin-api", api.url)], "outage")
    try:
        baseline(bridge)
        for i in range(10):
            httpx.get(f"{api.url}/items/{i}")
        wait_for(lambda: total(own_influx, "outage"), lambda v: v == 10, timeout=30)
        own_influx.stop()  # InfluxDB goes away
        for i in range(20):
            httpx.get(f"{api.url}/items/{i}")
        health = wait_for(lambda: httpx.get(bridge.url + "/healthz").json(),
                          lambda h: h["buffer_batches"] >= 2, timeout=30)
        assert health["last_write_error"]
        # The 20 requests are scraped and on disk once a scrape that started after them
        # has finished and the next one has started (the writer buffers inline).
        scraped_after(bridge.url, time.time())
        scraped_after(bridge.url, time.time())
        bridge.proc.send_signal(signal.SIGKILL)  # and the bridge dies without a goodbye
        bridge.proc.wait()
        assert list((tmp_path / "buffer").glob("*.lp"))
        own_influx.start()
        bridge = start_bridge(tmp_path, own_influx, [("admin-api", api.url)], "outage")
        wait_for(lambda: httpx.get(bridge.url + "/healthz").json(),
                 lambda h: h["buffer_batches"] == 0, timeout=20)
        assert total(own_influx, "outage") == 30
    finally:
        bridge.stop()


def test_target_restart_counts_from_zero_without_spikes(tmp_path, own_influx):
    api = uvicorn_server("tests.apps.fastapi_app:app")
    bridge = start_bridge(tmp_path, own_influx, [("admin-api", api.url)], "restart")
    try:
        baseline(bridge)
        for i in range(10):
            httpx.get(f"{api.url}/items/{i}")
        wait_for(lambda: total(own_influx, "restart"), lambda v: v == 10, timeout=30)
        port = api.port
        api.stop()
        # A failed scrape while it is down.
        down = wait_for(lambda: targets_json(bridge)["admin-api"],
                        lambda t: not t["up"] and t["failures"] >= 1)
        assert down["failures"] >= 1
        api = _restart_on(port)
        for i in range(7):
            httpx.get(f"{api.url}/items/{i}")
        wait_for(lambda: total(own_influx, "restart"), lambda v: v >= 17, timeout=20)
        scraped_after(bridge.url, time.time())  # two more scrapes: no spike comes late
        scraped_after(bridge.url, time.time())
        assert total(own_influx, "restart") == 17
        rows = own_influx.query('SELECT "requests" FROM "raw_7d"."performance_metrics" WHERE '
                                '"endpoint" = \'/items/{item_id}\'', db="restart")
        assert all(0 <= r[1] <= 10 for r in rows[0]["values"])
        down = own_influx.query('SELECT min("up") FROM "raw_7d"."scrape_health"',
                                db="restart")
        assert down[0]["values"][0][1] == 0  # the outage was recorded
    finally:
        bridge.stop()
        api.stop()


def _restart_on(port: int):
    import sys

    from .conftest import Server

    return Server([sys.executable, "-m", "uvicorn", "tests.apps.fastapi_app:app", "--host",
                   "127.0.0.1", "--port", str(port), "--log-level", "warning"], port)


def test_slow_target_never_delays_the_others(tmp_path, own_influx, api):
    slow = aiohttp_server("tests.apps.bad_targets:slow")
    bridge = start_bridge(tmp_path, own_influx, [("admin-api", api.url), ("slow", slow.url)],
                          "slow")
    try:
        status = wait_for(lambda: targets_json(bridge),
                          lambda s: s["admin-api"]["scrapes"] >= 4 and s["slow"]["failures"] >= 2,
                          timeout=30)
        assert status["admin-api"]["up"] and status["admin-api"]["scrapes"] >= 4
        assert not status["slow"]["up"] and "timed out" in status["slow"]["last_error"]
        # Same interval, own loops: the slow target's timeouts hold back no scrape of the
        # healthy one (it keeps pace, within the one scrape its start offset may make).
        assert status["admin-api"]["scrapes"] >= status["slow"]["scrapes"] - 1

        def counts() -> dict[str, float]:
            health = own_influx.query('SELECT count("up") FROM "raw_7d"."scrape_health" '
                                      'GROUP BY "service"', db="slow")
            return {s["tags"]["service"]: s["values"][0][1] for s in health}

        stored = wait_for(counts, lambda c: c.get("admin-api", 0) >= 3 and c.get("slow", 0) >= 2)
        assert stored["admin-api"] >= 3 and stored["slow"] >= 2
    finally:
        bridge.stop()
        slow.stop()


def test_bridge_started_before_influxdb_keeps_every_scrape(tmp_path, own_influx, api):
    # Writes are held until set-up has created the database: none is refused with a 404.
    own_influx.stop()
    bridge = start_bridge(tmp_path, own_influx, [("admin-api", api.url)], "late")
    try:
        baseline(bridge)
        for i in range(4):
            httpx.get(f"{api.url}/items/{i}")
        wait_for(lambda: targets_json(bridge)["admin-api"]["scrapes"], lambda n: n >= 3,
                 timeout=30)
        own_influx.start()
        wait_for(lambda: _total_or_none(own_influx, "late"), lambda v: v == 4, timeout=30)
        scrapes_before = targets_json(bridge)["admin-api"]["scrapes"]
        stored = own_influx.query('SELECT count("up") FROM "raw_7d"."scrape_health"', db="late")
        assert stored[0]["values"][0][1] >= scrapes_before - 1  # the first scrape included
        first = own_influx.query('SELECT first("up") FROM "raw_7d"."scrape_health"', db="late")
        assert first[0]["values"][0][1] == 1
        metrics = httpx.get(bridge.url + "/metrics").text
        assert 'promflux_bridge_points_dropped_total{reason="rejected"}' not in metrics
    finally:
        bridge.stop()


def _total_or_none(influx: InfluxServer, db: str) -> float | None:
    try:
        return total(influx, db)
    except RuntimeError:  # "database not found" until the bridge's set-up runs
        return None


class SteadyLoad:
    """Requests to one route from a thread, counted as they are answered."""

    def __init__(self, url: str, per_second: float = 40.0) -> None:
        import threading

        self.url, self.pause = url, 1.0 / per_second
        self.answered = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client() as client:
            while not self._stop.is_set():
                if client.get(f"{self.url}/items/1").status_code == 200:
                    self.answered += 1
                self._stop.wait(self.pause)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.answered


def test_sigterm_restarts_under_load_keep_the_request_total_exact(tmp_path, own_influx, api):
    bridge = start_bridge(tmp_path, own_influx, [("admin-api", api.url)], "restarts")
    baseline(bridge)  # the first scrape is a baseline: traffic starts after it
    load = SteadyLoad(api.url)
    try:
        for _ in range(5):
            scraped_after(bridge.url, time.time())  # a scrape or two under load
            bridge.proc.send_signal(signal.SIGTERM)
            bridge.proc.wait(timeout=30)
            assert bridge.proc.returncode == 0, bridge.output()
            bridge = start_bridge(tmp_path, own_influx, [("admin-api", api.url)], "restarts")
        sent = load.stop()
        scraped_after(bridge.url, time.time())  # every answered request is in a scrape
        stored = wait_for(lambda: total(own_influx, "restarts"), lambda v: v >= sent,
                          timeout=30)
        # Exact: each restart resumed the counters where the last bridge stopped, so the
        # requests served while it was away were counted once, not lost.
        assert stored == sent, (stored, sent)
        assert "resumed the counter state of 1 targets" in bridge.output()
    finally:
        load.stop()
        bridge.stop()
