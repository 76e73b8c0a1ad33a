"""Faults with real processes, every point accounted for: influxd killed (-9) at random
moments under load, the bridge stopped (SIGTERM) and killed (-9), lines InfluxDB rejects,
damaged and foreign files in the buffer. For each bridge process, the points it was handed
(plus what it found on disk) equal the points it wrote, dropped by a counted reason, or
left on disk for the next one. Nothing is ever invented: stored request totals never
exceed what the load generator was answered."""

from __future__ import annotations

import random
import re
import signal
import time

import httpx
import pytest

from .conftest import scraped_after, wait_for
from .influx import InfluxServer
from .test_bridge_e2e import start_bridge
from .test_bridge_faults import SUM_ITEMS, SteadyLoad, baseline

DB = "faults"


@pytest.fixture()
def influx():
    server = InfluxServer()
    yield server
    server.close()


def tally(output: str) -> dict[str, float]:
    """The counts a bridge logs when it stops ("stopped: submitted=... written=...")."""
    lines = re.findall(r"stopped: (.*)", output)
    assert lines, output[-3000:]
    return {k: float(v) for k, v in (item.split("=") for item in lines[-1].split())}


def dropped(counts: dict[str, float]) -> float:
    return sum(v for k, v in counts.items() if k.startswith("dropped_"))


def buffered_lines(folder) -> int:
    return sum(p.read_bytes().count(b"\n") for p in folder.glob("*.lp"))


def drained(bridge) -> None:
    """Wait until the bridge has written everything it holds (or fail, with its log)."""
    pending = wait_for(lambda: httpx.get(bridge.url + "/healthz").json()["buffer_batches"],
                       lambda n: n == 0, timeout=90)
    assert pending == 0, bridge.output()[-5000:]


def kill_influx_for_a_while(influx: InfluxServer, bridge, rng: random.Random) -> None:
    """kill -9 at a random moment, until the bridge has buffered to disk; then back."""
    time.sleep(rng.uniform(0.2, 1.5))
    influx.proc.send_signal(signal.SIGKILL)
    influx.proc.wait()
    wait_for(lambda: httpx.get(bridge.url + "/healthz").json()["buffer_batches"],
             lambda n: n >= 2, timeout=30)
    influx.start()


def test_every_point_is_written_dropped_or_kept(tmp_path, influx, api, capsys):
    rng = random.Random(20261128)
    buffer = tmp_path / "buffer"
    # A field InfluxDB will refuse from the bridge: "cpu_percent" stored as an integer
    # first, in the shard the bridge writes to (its retention policy, made here first).
    influx.query(f'CREATE DATABASE "{DB}"')
    influx.query(f'CREATE RETENTION POLICY "raw_7d" ON "{DB}" DURATION 7d REPLICATION 1 '
                 "DEFAULT")
    assert influx.write(DB, f"resources,service=admin-api,pid=1 cpu_percent=1i "
                            f"{int(time.time() * 1000)}\n").status_code == 204

    # 1: influxd killed twice under load, then the bridge stopped while it is down.
    bridge = start_bridge(tmp_path, influx, [("admin-api", api.url)], DB)
    baseline(bridge)
    load = SteadyLoad(api.url)
    try:
        for _ in range(2):
            kill_influx_for_a_while(influx, bridge, rng)
            drained(bridge)
        influx.stop()
        wait_for(lambda: httpx.get(bridge.url + "/healthz").json()["buffer_batches"],
                 lambda n: n >= 1, timeout=30)
        bridge.proc.send_signal(signal.SIGTERM)
        bridge.proc.wait(timeout=60)
        first = tally(bridge.output())
        left = buffered_lines(buffer)
        assert first["buffered_points"] == left > 0
        assert first["submitted"] == first["written"] + dropped(first) + left, first
        assert first["dropped_rejected_by_influxdb"] > 0  # the refused field, counted

        # 2: damaged and foreign files in the buffer; the next bridge starts and drains.
        (buffer / "notes.txt").write_text("not a batch")
        damaged = b"performance_metrics,service=x requests=1.0.0 1\n\x00\xff garbage\n"
        (buffer / "9999999999999999-raw_7d.lp").write_bytes(damaged)
        found = left + damaged.count(b"\n")
        influx.start()
        bridge = start_bridge(tmp_path, influx, [("admin-api", api.url)], DB)
        kill_influx_for_a_while(influx, bridge, rng)
        scraped_after(bridge.url, time.time())
        drained(bridge)
        assert (buffer / "quarantine" / "notes.txt").exists()
        bridge.proc.send_signal(signal.SIGTERM)
        bridge.proc.wait(timeout=60)
        second = tally(bridge.output())
        assert second["submitted"] + found == second["written"] + dropped(second) + \
            second["buffered_points"], second
        assert second["dropped_rejected_by_influxdb"] >= 2  # the two damaged lines

        # 3: the bridge killed (-9) while InfluxDB is down: what it had put on disk is
        # written by the next one.
        bridge = start_bridge(tmp_path, influx, [("admin-api", api.url)], DB)
        scraped_after(bridge.url, time.time())
        influx.stop()
        wait_for(lambda: httpx.get(bridge.url + "/healthz").json()["buffer_batches"],
                 lambda n: n >= 2, timeout=30)
        time.sleep(rng.uniform(0.0, 1.0))  # a random moment
        bridge.proc.send_signal(signal.SIGKILL)
        bridge.proc.wait()
        on_disk = buffered_lines(buffer)
        influx.start()
        bridge = start_bridge(tmp_path, influx, [("admin-api", api.url)], DB)
        scraped_after(bridge.url, time.time())
        drained(bridge)
        sent = load.stop()
        scraped_after(bridge.url, time.time())
        bridge.proc.send_signal(signal.SIGTERM)
        bridge.proc.wait(timeout=60)
        third = tally(bridge.output())
        assert third["submitted"] + on_disk == third["written"] + dropped(third) + \
            third["buffered_points"], third
    finally:
        load.stop()
        bridge.stop()
    stored = influx.query(SUM_ITEMS, db=DB)[0]["values"][0][1]
    assert 0 < stored <= sent  # never invented (the kill -9 gap is not counted: no state)
    with capsys.disabled():
        print(f"\nfault suite: run 1 {first}; run 2 {second} (+{found} found on disk); "
              f"after kill -9 {third} (+{on_disk} on disk); requests sent {sent}, "
              f"stored {stored:.0f}")


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


# 150,000 new series a scrape: scrapes every 2 s, as in the case this reproduces (reading
# one answer takes the churner's thread over a second).
@pytest.mark.parametrize("series, interval", [(10_000, 1), (150_000, 2)])
def test_series_churn_neither_stalls_the_bridge_nor_grows_it(tmp_path, influx, api, capsys,
                                                             series, interval):
    from .conftest import aiohttp_server

    churn = aiohttp_server("tests.apps.bad_targets:churn", env={"CHURN_SERIES": str(series)})
    bridge = start_bridge(tmp_path, influx, [("admin-api", api.url), ("churn", churn.url)],
                          f"churn{series}", interval=f"{interval}s")
    try:
        baseline(bridge)
        first = {t["service"]: t for t in httpx.get(bridge.url + "/api/targets").json()}
        worst, started = 0.0, time.monotonic()
        rss = [rss_mb(bridge.proc.pid)]
        while time.monotonic() - started < 15:  # new series on every scrape of the churner
            asked = time.monotonic()
            assert httpx.get(bridge.url + "/healthz", timeout=30).status_code == 200
            worst = max(worst, time.monotonic() - asked)
            rss.append(rss_mb(bridge.proc.pid))
            time.sleep(0.1)
        seen = {t["service"]: t for t in httpx.get(bridge.url + "/api/targets").json()}
        held = float(re.search(r"^promflux_bridge_event_loop_longest_hold_cpu_seconds (\S+)",
                               httpx.get(bridge.url + "/metrics").text, re.M)[1])
    finally:
        bridge.stop()
        churn.stop()
    # Every slot of the healthy target between the two reads was scraped: none skipped.
    before, after = first["admin-api"], seen["admin-api"]
    slots = round((after["last_scrape"] - before["last_scrape"]) / interval)
    healthy = after["scrapes"] - before["scrapes"]
    missed = after["missed"] - before["missed"]
    churned = seen["churn"]["scrapes"] - first["churn"]["scrapes"]
    with capsys.disabled():
        print(f"\nchurn of {series} series a scrape: healthy target {healthy} scrapes in "
              f"{slots} slots; churner {churned} scrapes; loop held {held * 1000:.0f} ms; "
              f"worst /healthz {worst * 1000:.0f} ms; RSS {rss[0]:.0f} -> {max(rss):.0f} "
              f"(last {rss[-1]:.0f}) MiB")
    assert missed == 0 and after["deferred"] == before["deferred"], (healthy, slots, missed)
    assert healthy >= slots
    assert churned >= 2 and seen["churn"]["up"], seen["churn"]
    # New series are read in a thread (a target's first answer too), their points encoded
    # in slices, and the compiled core's series are not the cycle collector's to walk:
    # 37-96 ms measured (a collection of the churner's young points may land on the loop);
    # before these, 0.1 s at 10,000 new series a scrape and 0.6-1 s at 150,000.
    assert held < 0.2, f"the event loop was held for {held * 1000:.0f} ms of CPU"
    assert worst < 2.0
    # The documented bound (docs/operations.md): the series of at most three scrapes of
    # the churner, about 1.3 KB each, besides what the bridge held before.
    assert max(rss) - rss[0] < 3 * series * 1.3 / 1024 + 60, (rss[0], max(rss))


def test_a_beacon_flood_keeps_the_bridge_small_and_quick(tmp_path, influx, api, capsys):
    bridge = start_bridge(tmp_path, influx, [("admin-api", api.url)], "flood")
    try:
        codes: set[int] = set()
        for status in range(100, 600):
            batch = {"timings": [{"route": "/api/status", "method": m, "status": status,
                                  "duration_ms": 5} for m in
                                 ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")]}
            codes.add(httpx.post(bridge.url + "/api/client-timings", json=batch).status_code)
        nested = httpx.post(bridge.url + "/api/client-timings", content=b"[" * 60_000)
        asked = time.monotonic()
        page = httpx.get(bridge.url + "/metrics")
        took = time.monotonic() - asked
        with capsys.disabled():
            print(f"\nbeacon flood (3,500 entries, 500 statuses x 7 methods): answers "
                  f"{sorted(codes)}; bridge /metrics {len(page.content) / 1024:.0f} KiB in "
                  f"{took * 1000:.0f} ms; nested JSON -> {nested.status_code}")
        assert codes <= {204, 429} and nested.status_code == 400
        assert len(page.content) < 4 * 1024 * 1024 and took < 2.0
    finally:
        bridge.stop()


def test_a_beacon_sent_in_two_writes_is_read_whole(tmp_path, influx, api):
    import json
    import socket

    bridge = start_bridge(tmp_path, influx, [("admin-api", api.url)], "beacon_split")
    try:
        body = json.dumps({"timings": [{"route": "/api/status", "method": "GET",
                                        "status": 200, "duration_ms": 12}] * 50}).encode()
        with socket.create_connection(("127.0.0.1", bridge.port)) as raw:
            raw.sendall(b"POST /api/client-timings HTTP/1.1\r\nHost: x\r\n"
                        b"Content-Type: application/json\r\nConnection: close\r\n"
                        + f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:100])
            time.sleep(0.3)  # the rest arrives later, as a slow network delivers it
            raw.sendall(body[100:])
            answer = b""
            while chunk := raw.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 204"), answer[:200]
        metrics = httpx.get(bridge.url + "/metrics").text
        assert ('promflux_bridge_client_request_duration_seconds_count{method="GET",'
                'route="/api/status",status="200"} 50.0') in metrics
    finally:
        bridge.stop()


def test_a_stalled_influxdb_never_delays_a_scrape(tmp_path, influx, api):
    bridge = start_bridge(tmp_path, influx, [("admin-api", api.url)], "stalled")
    try:
        baseline(bridge)
        influx.proc.send_signal(signal.SIGSTOP)  # answers nothing, closes nothing
        try:
            before = httpx.get(bridge.url + "/api/targets").json()[0]["scrapes"]
            started = time.monotonic()
            time.sleep(6)  # the time under test: writes hang for the client's 10 s timeout
            during = httpx.get(bridge.url + "/api/targets").json()[0]["scrapes"] - before
            elapsed = time.monotonic() - started
        finally:
            influx.proc.send_signal(signal.SIGCONT)
        # Scrapes went on at their 1 s interval while every write hung.
        assert during >= 0.8 * elapsed - 1, (during, elapsed)
        pending = wait_for(lambda: httpx.get(bridge.url + "/healthz").json()["buffer_batches"],
                           lambda n: n == 0, timeout=90)
        assert pending == 0  # and all of it reached InfluxDB afterwards
    finally:
        bridge.stop()


def test_the_targets_page_read_during_a_scrape_counts_what_its_last_scrape_says(
        tmp_path, influx):
    """/api/targets read while a scrape is under way: its scrape count and its last scrape
    are of the same moment (the count taken with the outcome, not as the scrape starts),
    so scrapes between two reads match the slots between their last scrapes."""
    from .conftest import aiohttp_server

    lagging = aiohttp_server("tests.apps.bad_targets:lagging")
    bridge = start_bridge(tmp_path, influx, [("lagging", lagging.url)], "lagging")
    try:
        baseline(bridge)
        reads = []
        started = time.monotonic()
        while time.monotonic() - started < 6:  # a scrape is under way half of the time
            target = httpx.get(bridge.url + "/api/targets").json()[0]
            reads.append((target["scrapes"], target["last_scrape"]))
            time.sleep(0.07)
    finally:
        bridge.stop()
        lagging.stop()
    first_count, first_at = reads[0]
    assert len({at for _, at in reads}) >= 4  # (scrapes went on while it read)
    for count, at in reads:
        assert count - first_count == round(at - first_at), (reads[0], (count, at))
