"""Three real bridges share one file-discovered fleet by hashmod: every target scraped,
none by two replicas, and every request stored once in the real InfluxDB."""

from __future__ import annotations

import json
import sys

import httpx
import pytest

from .conftest import Server, aiohttp_server, free_port, wait_for

TARGETS = 12


@pytest.fixture(scope="module")
def fleet():
    server = aiohttp_server("tests.apps.fleet:app")
    yield server
    server.stop()


def test_three_shards_scrape_every_target_once(tmp_path, influxdb, fleet):
    address = fleet.url.removeprefix("http://")
    groups = [{"targets": [address], "labels": {"service": f"svc{n}",
                                               "__metrics_path__": f"/t/{n}/metrics"}}
              for n in range(TARGETS)]
    (tmp_path / "fleet.json").write_text(json.dumps(groups))
    bridges = []
    try:
        for index in range(3):
            port = free_port()
            config = tmp_path / f"bridge{index}.yml"
            config.write_text(
                f"influxdb: {{url: {influxdb.url}, database: shards}}\n"
                "scrape: {interval: 1s, timeout: 1s}\n"
                f"buffer: {{path: {tmp_path / f'buffer{index}'}}}\nlisten: 127.0.0.1:{port}\n"
                f"file_sd_configs:\n  - files: [{tmp_path}/fleet.json]\n"
                f"shard: {{count: 3, index: {index}}}\n")
            bridges.append(Server([sys.executable, "-m", "promflux.bridge", "--config",
                                   str(config)], port, ready_path="/healthz"))

        def owned() -> list[dict[str, dict]]:
            return [{t["url"]: t for t in httpx.get(b.url + "/api/targets").json()}
                    for b in bridges]

        shards = wait_for(owned, lambda s: sum(len(x) for x in s) == TARGETS and all(
            t["scrapes"] >= 2 for x in s for t in x.values()))
        urls = [set(s) for s in shards]
        assert set.union(*urls) == {f"{fleet.url}/t/{n}/metrics" for n in range(TARGETS)}
        assert sum(len(u) for u in urls) == TARGETS  # no target in two shards
        assert all(urls), "each replica has some of the fleet"
        for n in range(TARGETS):
            httpx.post(f"{fleet.url}/t/{n}/add", params={"count": n + 1})

        def stored() -> dict[str, float]:
            series = influxdb.query(
                'SELECT sum("requests") FROM "performance_metrics" WHERE "endpoint" != '
                "'_all' GROUP BY \"service\"", db="shards")
            return {s["tags"]["service"]: s["values"][0][1] for s in series}

        want = {f"svc{n}": n + 1 for n in range(TARGETS)}
        got = wait_for(stored, lambda s: s == want, timeout=30)
        assert got == want  # each request once: no target was scraped by two replicas
        # and the fleet saw each target's scrapes from one replica only
        scrapes = httpx.get(fleet.url + "/scrapes").json()
        final = owned()
        for n in range(TARGETS):
            url = f"{fleet.url}/t/{n}/metrics"
            owner = next(s[url] for s in final if url in s)
            assert len(scrapes[str(n)]) <= owner["scrapes"] + 1, n
    finally:
        for bridge in bridges:
            bridge.stop()
