"""Discovery and live reload with a real bridge, real targets (one aiohttp server serving
many) and the real InfluxDB: file and HTTP discovery, labels as tags, targets that come
and go, SIGHUP and POST /-/reload, and a refused configuration that changes nothing."""

from __future__ import annotations

import json
import signal
import sys

import httpx
import pytest

from .conftest import Server, aiohttp_server, free_port, wait_for


@pytest.fixture(scope="module")
def fleet():
    server = aiohttp_server("tests.apps.fleet:app")
    yield server
    server.stop()


def start(config_path, text: str) -> Server:
    config_path.write_text(text)
    port = int(text.split("listen: 127.0.0.1:")[1].split("\n")[0])
    return Server([sys.executable, "-m", "promflux.bridge", "--config", str(config_path)],
                  port, ready_path="/healthz")


def targets(bridge: Server) -> dict[str, dict]:
    return {t["url"]: t for t in httpx.get(bridge.url + "/api/targets").json()}


def group(fleet: Server, n: int, service: str, **labels: str) -> dict:
    return {"targets": [fleet.url.removeprefix("http://")],
            "labels": {"service": service, "__metrics_path__": f"/t/{n}/metrics", **labels}}


def test_discovery_and_reload(tmp_path, influxdb, fleet):
    sd_dir = tmp_path / "sd"
    sd_dir.mkdir()
    (sd_dir / "a.json").write_text(json.dumps([group(fleet, 1, "files", zone="a")]))
    httpx.post(fleet.url + "/sd", content=json.dumps([group(fleet, 2, "inventory")]))
    port = free_port()
    head = (f"influxdb: {{url: {influxdb.url}, database: disco}}\n"
            "scrape: {interval: 1s, timeout: 1s}\n"
            f"buffer: {{path: {tmp_path / 'buffer'}}}\nlisten: 127.0.0.1:{port}\n"
            f"file_sd_configs:\n  - files: [{sd_dir}/*.json]\n    refresh_interval: 0.2s\n"
            f"http_sd_configs:\n  - url: {fleet.url}/sd\n    refresh_interval: 0.3s\n")
    static = f"targets:\n  - {{service: static, url: '{fleet.url}/t/0/metrics'}}\n"
    config = tmp_path / "bridge.yml"
    bridge = start(config, head + static)
    url = {n: f"{fleet.url}/t/{n}/metrics" for n in range(6)}
    try:
        # Static, file and HTTP targets together; discovered ones carry instance and labels.
        found = wait_for(lambda: targets(bridge), lambda t: len(t) == 3 and all(
            x["scrapes"] >= 2 for x in t.values()))
        instance = fleet.url.removeprefix("http://")
        assert found[url[1]]["labels"] == {"instance": instance, "zone": "a"}
        assert found[url[2]]["labels"] == {"instance": instance}
        assert found[url[0]]["labels"] == {}
        httpx.post(f"{fleet.url}/t/1/add", params={"count": 7})
        stored = wait_for(lambda: influxdb.query(
            'SELECT sum("requests") FROM "performance_metrics" WHERE "endpoint" != \'_all\' '
            'GROUP BY "service", "zone", "instance"', db="disco"),
            lambda s: any(x["tags"]["service"] == "files" and x["values"][0][1] == 7
                          for x in s))
        files_row = next(x for x in stored if x["tags"]["service"] == "files")
        assert files_row["tags"] == {"service": "files", "zone": "a", "instance": instance}

        # A file target added is scraped; a broken file keeps the good ones and says why.
        (sd_dir / "a.json").write_text(json.dumps([group(fleet, 1, "files", zone="a"),
                                                   group(fleet, 3, "files", zone="b")]))
        wait_for(lambda: targets(bridge), lambda t: t.get(url[3], {}).get("scrapes", 0) >= 1)
        (sd_dir / "b.json").write_text("[{broken")
        health = wait_for(lambda: httpx.get(bridge.url + "/healthz").json(),
                          lambda h: h["discovery_problems"])
        assert "b.json" in health["discovery_problems"][0]
        assert "not valid JSON" in health["discovery_problems"][0]
        assert "Discovery: " in httpx.get(bridge.url + "/").text
        assert len(targets(bridge)) == 4

        # HTTP discovery answering the wrong type: the last good targets stay.
        httpx.post(fleet.url + "/sd", params={"type": "text/plain"}, content="[]")
        wait_for(lambda: httpx.get(bridge.url + "/healthz").json(),
                 lambda h: any("Content-Type" in p for p in h["discovery_problems"]))
        assert url[2] in targets(bridge)

        # A removed target is gone, not down: out of the targets and the status.
        (sd_dir / "a.json").write_text(json.dumps([group(fleet, 1, "files", zone="a")]))
        wait_for(lambda: targets(bridge), lambda t: url[3] not in t)
        status = httpx.get(bridge.url + "/api/status").json()["services"]
        assert status["files"]["up"] is True and status["files"]["level"] != "critical"

        # SIGHUP with one more static target: the unchanged ones keep their loops and rate
        # state, so requests served across the reload are all counted.
        before = targets(bridge)[url[0]]["scrapes"]
        httpx.post(f"{fleet.url}/t/0/add", params={"count": 5})
        config.write_text(head + static + f"  - {{service: added, url: '{url[4]}'}}\n")
        bridge.proc.send_signal(signal.SIGHUP)
        after = wait_for(lambda: targets(bridge),
                         lambda t: t.get(url[4], {}).get("scrapes", 0) >= 2)
        assert after[url[0]]["scrapes"] > before  # the same loop, still counting
        wait_for(lambda: influxdb.query(
            'SELECT sum("requests") FROM "performance_metrics" WHERE "service" = \'static\' '
            'AND "endpoint" != \'_all\'', db="disco"),
            lambda s: s and s[0]["values"][0][1] == 5)

        # An invalid configuration is refused with its reason; the old one keeps running.
        config.write_text(head.replace("interval: 1s", "interval: soon") + static)
        refused = httpx.post(bridge.url + "/-/reload")
        assert refused.status_code == 400 and "scrape.interval" in refused.json()["error"]
        health = httpx.get(bridge.url + "/healthz").json()
        assert health["reload"]["ok"] is False
        assert "reload-error" in httpx.get(bridge.url + "/").text
        scraped = targets(bridge)[url[4]]["scrapes"]
        wait_for(lambda: targets(bridge), lambda t: t[url[4]]["scrapes"] > scraped)
        # A hostile file by signal: refused the same way, and /healthz says so.
        config.write_text("{" * 5000)
        bridge.proc.send_signal(signal.SIGHUP)
        health = wait_for(lambda: httpx.get(bridge.url + "/healthz").json(),
                          lambda h: h["reload"]["message"].endswith("64 deep"))
        assert health["reload"]["ok"] is False

        # Fixed and posted: the added target goes, a restart-only change is named.
        config.write_text(head.replace("timeout: 1s", "timeout: 0.5s") + static)
        done = httpx.post(bridge.url + "/-/reload")
        assert done.status_code == 200
        assert "kept until a restart: scrape" in done.json()["changes"]
        assert url[4] not in targets(bridge)
        assert httpx.get(bridge.url + "/healthz").json()["reload"]["ok"] is True
    finally:
        bridge.stop()
    output = bridge.output()
    assert "Traceback" not in output, output


def test_a_reloaded_p95_limit_reaches_the_running_scrapers(tmp_path):
    """requests_within_limit counts up to the p95 limit: after a reload that lowers the
    limit, the same scrape counts up to the new one."""
    import asyncio

    from promflux.bridge.app import Bridge
    from promflux.bridge.config import load
    from promflux.bridge.ingest.exposition import parse
    from promflux.bridge.reload import apply_config

    def config(warning_ms: int) -> str:
        return (f"influxdb:\n  url: http://127.0.0.1:{free_port()}\n"
                f"buffer:\n  path: {tmp_path / 'buffer'}\n"
                "targets:\n  - service: api\n    url: http://127.0.0.1:9/metrics\n"
                f"thresholds:\n  p95_ms: {{warning: {warning_ms}, critical: 2000}}\n")

    def page(slow: int) -> str:  # 10 requests of 0.1-0.25 s and `slow` of 0.25-0.5 s
        rows = [("0.1", 0), ("0.25", 10), ("0.5", 10 + slow), ("+Inf", 10 + slow)]
        return "# TYPE http_request_duration_seconds histogram\n" + "".join(
            f'http_request_duration_seconds_bucket{{route="/a",method="GET",status="200",'
            f'le="{le}"}} {n}\n' for le, n in rows) + (
            'http_request_duration_seconds_count{route="/a",method="GET",status="200"} '
            f"{10 + slow}\n"
            'http_request_duration_seconds_sum{route="/a",method="GET",status="200"} 5\n')

    def within_after(bridge: Bridge, slow: int, at: float) -> float:
        deriver = bridge.scrapers[0].deriver
        points = deriver.derive(parse(page(slow), deriver.cache), at, at)
        return next(p[2]["requests_within_limit"] for p in points
                    if p[0] == "performance_metrics" and p[1].get("endpoint") == "/a")

    path = tmp_path / "bridge.yml"
    path.write_text(config(500))
    bridge = Bridge(load(path), path)
    bridge.scrapers[0].deriver.derive(parse(page(0), bridge.scrapers[0].deriver.cache), 0, 0)
    assert within_after(bridge, 4, 15) == 4  # 4 new requests of 0.25-0.5 s: within 500 ms
    path.write_text(config(250))
    changes = asyncio.run(apply_config(bridge, load(path)))
    assert "thresholds" in changes
    assert within_after(bridge, 8, 30) == 0  # 4 more of 0.25-0.5 s: over 250 ms now
