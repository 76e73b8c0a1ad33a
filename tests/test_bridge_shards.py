"""Three real bridges share one file-discovered fleet by hashmod: every target scraped,
none by two replicas, and every request stored once in the real InfluxDB."""

from __future__ import annotations

import json
import sys

import httpx
import pytest
from promflux.bridge.discover.groups import shard_of

from .conftest import Server, aiohttp_server, free_port, wait_for

TARGETS = 12


@pytest.fixture(scope="module")
def fleet():
    server = aiohttp_server("tests.apps.fleet:app")
    yield server
    server.stop()


def spread(base_url: str, shards: int) -> list[int]:
    """``TARGETS`` target numbers that give every shard at least one target, whatever port
    the fleet got: the first ones, and for a shard left empty, the first number that falls
    in it (hashmod of the URL, as the bridge computes it)."""
    numbers = list(range(TARGETS))
    for shard in range(shards):
        owners = [n for n in numbers
                  if shard_of(f"{base_url}/t/{n}/metrics", shards) == shard]
        if not owners:
            found = next(n for n in range(TARGETS, 10_000)
                         if shard_of(f"{base_url}/t/{n}/metrics", shards) == shard)
            fullest = max(range(shards), key=lambda s: sum(
                shard_of(f"{base_url}/t/{n}/metrics", shards) == s for n in numbers))
            victim = next(n for n in numbers
                          if shard_of(f"{base_url}/t/{n}/metrics", shards) == fullest)
            numbers[numbers.index(victim)] = found
    return numbers


def test_the_spread_gives_every_shard_a_target():
    for port in range(20000, 20400):  # about 2.6 % of ports left a shard empty before
        numbers = spread(f"http://127.0.0.1:{port}", 3)
        assert len(set(numbers)) == TARGETS
        assert {shard_of(f"http://127.0.0.1:{port}/t/{n}/metrics", 3) for n in numbers} == {
            0, 1, 2}


def test_three_shards_scrape_every_target_once(tmp_path, influxdb, fleet):
    address = fleet.url.removeprefix("http://")
    numbers = spread(fleet.url, 3)
    groups = [{"targets": [address], "labels": {"service": f"svc{n}",
                                               "__metrics_path__": f"/t/{n}/metrics"}}
              for n in numbers]
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
        assert set.union(*urls) == {f"{fleet.url}/t/{n}/metrics" for n in numbers}
        assert sum(len(u) for u in urls) == TARGETS  # no target in two shards
        assert all(urls), "each replica has some of the fleet"
        for n in numbers:
            httpx.post(f"{fleet.url}/t/{n}/add", params={"count": n + 1})

        def stored() -> dict[str, float]:
            series = influxdb.query(
                'SELECT sum("requests") FROM "performance_metrics" WHERE "endpoint" != '
                "'_all' GROUP BY \"service\"", db="shards")
            return {s["tags"]["service"]: s["values"][0][1] for s in series}

        want = {f"svc{n}": n + 1 for n in numbers}
        got = wait_for(stored, lambda s: s == want, timeout=30)
        assert got == want  # each request once: no target was scraped by two replicas
        # and the fleet saw each target's scrapes from one replica only
        scrapes = httpx.get(fleet.url + "/scrapes").json()
        final = owned()
        for n in numbers:  # (the spread may have swapped a number for a later one)
            url = f"{fleet.url}/t/{n}/metrics"
            owner = next(s[url] for s in final if url in s)
            assert len(scrapes[str(n)]) <= owner["scrapes"] + 1, n
    finally:
        for bridge in bridges:
            bridge.stop()
