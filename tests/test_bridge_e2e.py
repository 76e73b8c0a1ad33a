"""End to end: real services -> the bridge process -> a real InfluxDB -> InfluxQL."""

from __future__ import annotations

import sys
import time

import httpx
import pytest

from .conftest import (
    Server,
    aiohttp_server,
    free_port,
    scraped_after,
    uvicorn_server,
    wait_for,
)


@pytest.fixture()
def services():
    api = uvicorn_server("tests.apps.fastapi_app:app")
    ingest = aiohttp_server("tests.apps.aiohttp_app:create_app")
    yield api, ingest
    api.stop()
    ingest.stop()


def start_bridge(tmp_path, influxdb, targets: list[tuple[str, str]], database: str,
                 interval: str = "1s") -> Server:
    port = free_port()
    lines = [f"influxdb:\n  url: {influxdb.url}\n  database: {database}\n",
             f"scrape:\n  interval: {interval}\n  timeout: 1s\n",
             f"buffer:\n  path: {tmp_path / 'buffer'}\n", f"listen: 127.0.0.1:{port}\n",
             "targets:\n"]
    lines += [f"  - service: {service}\n    url: {url}/metrics\n" for service, url in targets]
    config = tmp_path / "bridge.yml"
    config.write_text("".join(lines))
    return Server([sys.executable, "-m", "promflux.bridge", "--config", str(config)], port,
                  ready_path="/healthz")


def targets_json(bridge: Server) -> dict:
    return {t["service"]: t for t in httpx.get(bridge.url + "/api/targets").json()}


def test_latency_percentiles_and_rates_reach_influxdb(tmp_path, influxdb, services):
    api, ingest = services
    bridge = start_bridge(tmp_path, influxdb, [("admin-api", api.url), ("ingest", ingest.url)],
                          "e2e")
    try:
        # Wait for a baseline scrape of both, then send known traffic.
        wait_for(lambda: targets_json(bridge),
                 lambda t: all(x["scrapes"] >= 1 and x["up"] for x in t.values()), timeout=20)
        for i in range(20):
            assert httpx.get(f"{api.url}/items/{i}", params={"delay_ms": 105}).status_code == 200
        for _ in range(5):
            assert httpx.get(api.url + "/boom").status_code == 500
        for sensor in range(10):
            assert httpx.get(f"{ingest.url}/readings/{sensor}").status_code == 200
        sent = time.time()

        def query(q: str) -> list:
            return influxdb.query(q, db="e2e")

        # Every request was answered before ``sent``: a scrape that started after it and
        # the following one (whose points are written once it finished) see all of them.
        scraped_after(bridge.url, sent)
        scraped_after(bridge.url, time.time())

        total = query('SELECT sum("requests") FROM "raw_7d"."performance_metrics" WHERE '
                      '"service" = \'admin-api\' AND "endpoint" = \'/items/{item_id}\'')
        assert total[0]["values"][0][1] == 20
        p95 = query('SELECT "p95_ms", "requests" FROM "raw_7d"."performance_metrics" WHERE '
                    '"service" = \'admin-api\' AND "endpoint" = \'/items/{item_id}\' '
                    'AND "requests" > 0')
        for _, value, requests in p95[0]["values"]:
            assert 100 < value <= 150, (value, requests)  # every request took 105-150 ms
        errors = query('SELECT sum("errors"), sum("requests") FROM '
                       '"raw_7d"."performance_metrics" WHERE "service" = \'admin-api\' '
                       'AND "endpoint" = \'/boom\'')
        assert errors[0]["values"][0][1:] == [5, 5]
        exceptions = query('SELECT sum("exceptions") FROM "raw_7d"."exceptions" WHERE '
                           '"exception" = \'tests.apps.fastapi_app.DeviceOfflineError\'')
        assert exceptions[0]["values"][0][1] == 5
        ingest_total = query('SELECT sum("requests") FROM "raw_7d"."performance_metrics" '
                             'WHERE "service" = \'ingest\' AND "endpoint" = '
                             '\'/readings/{sensor}\'')
        assert ingest_total[0]["values"][0][1] == 10
        memory = query('SELECT last("memory_mb") FROM "raw_7d"."resources" WHERE '
                       '"service" = \'admin-api\'')
        assert memory[0]["values"][0][1] > 10
        health = query('SELECT last("up") FROM "raw_7d"."scrape_health" GROUP BY "service"')
        assert {s["tags"]["service"]: s["values"][0][1] for s in health} == {
            "admin-api": 1, "ingest": 1}
        # No NaN or infinities anywhere, and no spike: per-minute rates stay plausible.
        rates = query('SELECT max("requests_per_minute") FROM "raw_7d"."performance_metrics"')
        assert rates[0]["values"][0][1] < 20 * 60
        assert "promflux_bridge_scrapes_total" in httpx.get(bridge.url + "/metrics").text
    finally:
        bridge.stop()


def test_invalid_config_exits_2_with_the_key(tmp_path):
    import subprocess

    config = tmp_path / "bad.yml"
    config.write_text("scrape:\n  interval: soon\ntargets:\n  - service: a\n    url: x\n")
    result = subprocess.run([sys.executable, "-m", "promflux.bridge", "--config", str(config)],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "scrape.interval" in result.stderr and "targets.0.url" in result.stderr
    good = tmp_path / "good.yml"
    good.write_text("targets:\n  - service: a\n    url: http://127.0.0.1:1/metrics\n")
    result = subprocess.run([sys.executable, "-m", "promflux.bridge", "--config", str(good),
                             "--check-config"], capture_output=True, text=True)
    assert result.returncode == 0 and "OK (1 static targets, 0 discovery sources" in result.stdout


def test_percentiles_over_any_range_are_exact_from_the_buckets(tmp_path, influxdb):
    import math

    from promflux.bridge.analyze.quantile import normalize, quantile

    from .conftest import scrape, scraped_after

    api = uvicorn_server("tests.apps.fastapi_app:app")
    bridge = start_bridge(tmp_path, influxdb, [("admin-api", api.url)], "ranges")
    try:
        wait_for(lambda: targets_json(bridge), lambda t: t["admin-api"]["scrapes"] >= 1)
        started = time.time() - 1
        # Bimodal: most requests fast, some slow (a mean of per-interval p95s hides them).
        for i in range(60):
            delay = 700 if i % 6 == 0 else 15
            httpx.get(f"{api.url}/items/{i}", params={"delay_ms": delay})
        for _ in range(5):
            httpx.post(f"{api.url}/items")
        scraped_after(bridge.url, time.time())
        scraped_after(bridge.url, time.time())
        truth = scrape(api.url)  # a fresh service: its counts are the range's increases

        def expected(route: str | None) -> dict:
            buckets: dict[float, float] = {}
            for _, labels, value in truth.find("http_request_duration_seconds_bucket"):
                if route is None or labels["route"] == route:
                    le = float(labels["le"])
                    buckets[le] = buckets.get(le, 0.0) + value
            ordered = normalize(buckets.items())
            out = {f"p{int(q * 100)}_ms": quantile(q, ordered) * 1000
                   for q in (0.5, 0.9, 0.95, 0.99)}
            return {**out, "requests": buckets[math.inf]}

        window = {"start": started, "end": time.time() + 60}
        cases = [({"endpoint": "/items/{item_id}", "method": "GET"}, "/items/{item_id}"),
                 ({}, None)]  # the service as a whole: all endpoints' buckets summed
        for extra, route in cases:
            want = expected(route)
            got = wait_for(lambda extra=extra: httpx.get(
                bridge.url + "/api/percentiles",
                params={"service": "admin-api", **extra, **window}).json(),
                lambda g, want=want: g.get("requests") == want["requests"])
            assert got.keys() == want.keys()
            for key, value in want.items():
                assert math.isclose(got[key], value, rel_tol=1e-9), (key, got, want)
        # RFC 3339 works as well as epoch seconds; bad requests are told why.
        iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started - 1))
        ok = httpx.get(bridge.url + "/api/percentiles", params={
            "service": "admin-api", "start": iso, "end": window["end"]})
        assert ok.status_code == 200 and ok.json()["requests"] == expected(None)["requests"]
        for bad in ({"start": 1, "end": 2}, {"service": "a", "start": "yesterday", "end": 2},
                    {"service": "a", "start": 5, "end": 1}):
            answer = httpx.get(bridge.url + "/api/percentiles", params=bad)
            assert answer.status_code == 400 and answer.json()["error"]
    finally:
        bridge.stop()
        api.stop()
