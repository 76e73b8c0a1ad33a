"""An HA pair of real bridges on the same targets and the same real InfluxDB: twin points
land on the same slot and are stored once, a kill -9 of either leaves no gap and doubles no
count, and the generic webhooks go out from one replica only (the other takes over when
the primary is gone)."""

from __future__ import annotations

import signal
import sys
import time

import httpx
import pytest

from .conftest import Server, aiohttp_server, free_port, wait_for
from .webhook_receiver import Receiver


@pytest.fixture(scope="module")
def fleet():
    server = aiohttp_server("tests.apps.fleet:app")
    yield server
    server.stop()


def scrape_times(fleet: Server, n: int) -> list[float]:
    return httpx.get(fleet.url + "/scrapes").json().get(str(n), [])


def add_between_slots(fleet: Server, n: int, count: int, after: float = 0.0) -> float:
    """Add requests half-way between two slots, when neither replica is scraping (both
    scrape each slot within milliseconds of each other), in a slot later than ``after``;
    returns when."""
    while True:
        last = max(scrape_times(fleet, n))
        now = time.time()
        if last > after and 0.35 <= now - last <= 0.65:
            httpx.post(f"{fleet.url}/t/{n}/add", params={"count": count})
            return time.time()
        time.sleep(0.02 if now - last < 0.35 else 0.3)


def ambiguous(adds: list[tuple[float, int]], scrapes: list[float]) -> int:
    """Requests added between the two replicas' scrapes of one slot (possible only on a
    badly loaded machine): a pair's stored count may differ from the truth by these."""
    scrapes = sorted(scrapes)
    pairs = [(a, b) for a, b in zip(scrapes, scrapes[1:], strict=False) if b - a < 0.3]
    return sum(k for at, k in adds if any(a < at < b for a, b in pairs))


def start_pair(tmp_path, influxdb, db: str, rest: str) -> list[Server]:
    """A primary and a secondary, each the other's peer, scraping every second; ``rest``
    is the rest of their configuration (targets, notifications)."""
    ports = [free_port(), free_port()]
    bridges: list[Server] = []
    for index in (0, 1):
        config = tmp_path / f"bridge{index}.yml"
        config.write_text(
            f"influxdb: {{url: {influxdb.url}, database: {db}}}\n"
            "scrape: {interval: 1s, timeout: 1s}\n"
            f"buffer: {{path: {tmp_path / f'buffer{index}'}}}\n"
            f"listen: 127.0.0.1:{ports[index]}\n"
            f"ha: {{peer: 'http://127.0.0.1:{ports[1 - index]}', primary: {index == 0}}}\n"
            + rest)
        bridges.append(Server([sys.executable, "-m", "promflux.bridge", "--config",
                               str(config)], ports[index], ready_path="/healthz"))
    return bridges


def am_alerts(alertmanager: Server) -> list[dict]:
    """Alertmanager's active alerts about the flaky target being down."""
    return [a for a in httpx.get(alertmanager.url + "/api/v2/alerts").json()
            if a["labels"].get("service") == "flaky" and a["labels"].get("metric") == "up"
            and a["status"]["state"] == "active"]


def bridge_metric(bridge: Server, name: str) -> float:
    """A counter of the bridge's own /metrics, summed over its labels (0 before it first
    counts)."""
    return sum(float(line.rsplit(" ", 1)[1])
               for line in httpx.get(bridge.url + "/metrics").text.splitlines()
               if line.startswith(name) and line[len(name):len(name) + 1] in (" ", "{"))


def am_sent(bridge: Server) -> float:
    return bridge_metric(bridge, "promflux_bridge_alertmanager_sent_total")


def written(bridge: Server) -> float:
    """Points the replica wrote to InfluxDB (the standby: only those its twin did not)."""
    return bridge_metric(bridge, "promflux_bridge_points_written_total")


def test_ha_pair_stores_once_survives_a_kill_and_sends_webhooks_once(
        tmp_path, influxdb, fleet, alertmanager):
    hook = Receiver()
    bridges = start_pair(
        tmp_path, influxdb, "pair",
        f"webhooks: [{{url: '{hook.url}'}}]\n"
        f"alertmanagers: [{{url: '{alertmanager.url}', resend_interval: 1s}}]\n"
        "thresholds: {for: 0s, resolve: 0s, down_for: 0s}\n"
        f"targets:\n  - {{service: counted, url: '{fleet.url}/t/0/metrics'}}\n"
        f"  - {{service: flaky, url: '{fleet.url}/t/1/metrics'}}\n")
    primary, secondary = bridges

    def deliveries(level: str) -> list[dict]:
        return [b for b in hook.delivered if b["service"] == "flaky" and b["level"] == level]

    def level(bridge: Server) -> str:
        return httpx.get(bridge.url + "/api/status").json()["services"]["flaky"]["level"]

    try:
        wait_for(lambda: scrape_times(fleet, 0), lambda t: len(t) >= 6)  # both, 3 slots
        adds = [(add_between_slots(fleet, 0, 10), 10)]
        for _ in range(4):
            adds.append((add_between_slots(fleet, 0, 10, adds[-1][0]), 10))

        # Both replicas see the target fail; only the primary posts the change.
        httpx.post(f"{fleet.url}/t/1/fail", params={"on": "1"})
        wait_for(lambda: deliveries("critical"), lambda d: len(d) >= 1)
        wait_for(lambda: level(secondary), lambda lv: lv == "critical")
        # Both replicas post the alert to Alertmanager; it holds one, and notifies once.
        wait_for(lambda: (am_sent(primary), am_sent(secondary)), lambda n: min(n) >= 2)
        assert len(am_alerts(alertmanager)) == 1
        firing = wait_for(lambda: [a for body in alertmanager.receiver.delivered
                                   for a in body["alerts"] if a["labels"].get("service")
                                   == "flaky" and body["status"] == "firing"],
                          lambda a: len(a) >= 1)
        assert len(firing) == 1
        httpx.post(f"{fleet.url}/t/1/fail", params={"on": "0"})
        wait_for(lambda: deliveries("ok"), lambda d: len(d) >= 1)
        wait_for(lambda: level(secondary), lambda lv: lv == "ok")
        seen = len(scrape_times(fleet, 1))
        wait_for(lambda: scrape_times(fleet, 1), lambda t: len(t) >= seen + 4)
        assert (len(deliveries("critical")), len(deliveries("ok"))) == (1, 1)

        # kill -9 the primary: the secondary keeps every slot and takes the webhooks.
        primary.proc.send_signal(signal.SIGKILL)
        primary.proc.wait()
        killed = time.time()
        for _ in range(5):
            adds.append((add_between_slots(fleet, 0, 10, adds[-1][0]), 10))
        wait_for(lambda: secondary.output(), lambda o: "now sends webhooks" in o)
        httpx.post(f"{fleet.url}/t/1/fail", params={"on": "1"})
        wait_for(lambda: deliveries("critical"), lambda d: len(d) == 2)
        last_add = adds[-1][0]
        wait_for(lambda: scrape_times(fleet, 0), lambda t: sum(x > last_add for x in t) >= 2)

        def stored() -> list[list]:
            series = influxdb.query(
                'SELECT "requests" FROM "performance_metrics" WHERE "service" = \'counted\' '
                "AND \"endpoint\" != '_all'", db="pair")
            return series[0]["values"] if series else []

        truth = sum(k for _, k in adds)
        slack = ambiguous(adds, scrape_times(fleet, 0))
        rows = wait_for(stored, lambda r: abs(sum(v for _, v in r) - truth) <= slack)
        assert abs(sum(v for _, v in rows) - truth) <= slack, (rows, truth, slack)
        times = [t for t, _ in rows]
        # One point per slot (the twins overwrote each other), on the slot grid, no gap
        # across the kill.
        assert len({t % 1000 for t in times}) == 1
        assert all(b - a == 1000 for a, b in zip(times, times[1:], strict=False)), times
        assert times[0] < killed * 1000 < times[-1]
    finally:
        for bridge in bridges:
            bridge.stop()
    assert "Traceback" not in secondary.output()


@pytest.mark.parametrize("frozen", [0, 1])  # the primary, then the secondary
def test_a_frozen_replica_never_writes_its_stall_over_its_twins_slot(tmp_path, influxdb,
                                                                       fleet, frozen):
    """SIGSTOP one replica for about 6 slots while requests keep coming, then SIGCONT:
    its first scrape after the stall spans the slots the twin stored; written into one
    slot it would overwrite the twin's point with all of them, and the interval after it
    begins off the slot grid. Stored total = truth; the twin's coverage is what decides."""
    db = f"frozen{frozen}"
    bridges = start_pair(tmp_path, influxdb, db,
                         f"targets:\n  - {{service: counted, url: '{fleet.url}/t/0/metrics'}}\n")
    stalled = bridges[frozen]
    try:
        seen = len(scrape_times(fleet, 0))
        wait_for(lambda: scrape_times(fleet, 0), lambda t: len(t) >= seen + 6)
        adds = [(add_between_slots(fleet, 0, 10), 10)]
        adds.append((add_between_slots(fleet, 0, 10, adds[-1][0]), 10))
        stalled.proc.send_signal(signal.SIGSTOP)
        try:
            for _ in range(6):
                adds.append((add_between_slots(fleet, 0, 10, adds[-1][0]), 10))
        finally:
            stalled.proc.send_signal(signal.SIGCONT)
        for _ in range(4):
            adds.append((add_between_slots(fleet, 0, 10, adds[-1][0]), 10))
        last_add = adds[-1][0]
        wait_for(lambda: scrape_times(fleet, 0), lambda t: sum(x > last_add for x in t) >= 4)

        def stored() -> list[list]:
            series = influxdb.query(
                'SELECT "requests" FROM "performance_metrics" WHERE "service" = \'counted\' '
                "AND \"endpoint\" != '_all'", db=db)
            return series[0]["values"] if series else []

        truth = sum(k for _, k in adds)
        slack = ambiguous(adds, scrape_times(fleet, 0))
        rows = wait_for(stored, lambda r: abs(sum(v for _, v in r) - truth) <= slack)
        assert abs(sum(v for _, v in rows) - truth) <= slack, (rows, truth, slack)
        # No slot holds a stall's worth (two adds at most: a slot both replicas scraped late).
        assert max(v for _, v in rows) <= 20 + slack
    finally:
        for bridge in bridges:
            bridge.stop()



def test_a_pair_stores_the_exact_count_when_its_twins_never_agree(tmp_path, influxdb, fleet):
    """Every slot, requests come between the twins' two scrapes (the fleet adds them right
    after a slot's first scrape), so the replicas' points for each slot always differ. Had
    both written, InfluxDB would hold whichever came last, a mix; the standby holds its
    points back until the primary has stored the slot, so the total is exact."""
    bridges = start_pair(tmp_path, influxdb, "steady",
                         f"targets:\n  - {{service: counted, url: '{fleet.url}/t/2/metrics'}}\n")
    primary, standby = bridges
    try:
        wait_for(lambda: httpx.get(standby.url + "/api/coverage").json(),
                 lambda c: c["role"] == "standby" and c["targets"][0]["covered_until"])
        seen = len(scrape_times(fleet, 2))
        wait_for(lambda: scrape_times(fleet, 2), lambda t: len(t) >= seen + 4)  # both, 2 slots
        before = written(standby)
        started = time.time()
        httpx.post(f"{fleet.url}/t/2/race", params={"count": 7})
        wait_for(lambda: scrape_times(fleet, 2), lambda t: sum(x > started for x in t) >= 12)
        served = int(httpx.post(f"{fleet.url}/t/2/race", params={"count": 0}).text)
        stopped = time.time()
        wait_for(lambda: scrape_times(fleet, 2), lambda t: sum(x > stopped for x in t) >= 4)

        def stored() -> float:
            rows = influxdb.query(
                'SELECT sum("requests") FROM "performance_metrics" WHERE "service" = '
                "'counted' AND \"endpoint\" != '_all'", db="steady")
            return rows[0]["values"][0][1] if rows else 0

        assert served >= 35
        assert wait_for(stored, lambda n: n == served) == served
        assert written(standby) == before  # every point was the primary's
    finally:
        for bridge in bridges:
            bridge.stop()
