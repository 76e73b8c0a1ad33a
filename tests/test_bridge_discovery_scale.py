"""100,000 discovered targets arrive and go while the bridge runs: it keeps answering,
never holds its event loop for 100 ms, and hands the memory back afterwards."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import httpx

from .conftest import Server, free_port, wait_for

COUNT = 100_000


def rss_mib(server: Server) -> float:
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def metric(server: Server, name: str) -> float:
    for line in httpx.get(server.url + "/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not on /metrics")


def groups(count: int) -> list[dict[str, object]]:
    # Loopback addresses (all of 127/8): a scrape that falls due is refused at once.
    addresses = [f"127.{1 + i // 65536}.{i // 256 % 256}.{i % 256}:9" for i in range(count)]
    return [{"targets": addresses[i:i + 1000], "labels": {"service": f"svc{i // 1000 % 7}"}}
            for i in range(0, count, 1000)]


def watch_health(bridge: Server, until: object) -> float:
    """The slowest /healthz answer while polling until ``until()`` is true."""
    slowest, deadline = 0.0, time.monotonic() + 120
    while time.monotonic() < deadline:
        started = time.perf_counter()
        health = httpx.get(bridge.url + "/healthz", timeout=30).json()
        slowest = max(slowest, time.perf_counter() - started)
        if until(health):  # type: ignore[operator]
            return slowest
        time.sleep(0.05)
    raise AssertionError(f"not reached in 120 s: {health}")


def test_a_hundred_thousand_targets_come_and_go_without_a_stall(tmp_path, influxdb):
    found = tmp_path / "targets.json"
    found.write_text("[]")
    port = free_port()
    config = tmp_path / "bridge.yml"
    config.write_text(
        f"influxdb:\n  url: {influxdb.url}\n  database: scale\n"
        f"buffer:\n  path: {tmp_path / 'buffer'}\nlisten: 127.0.0.1:{port}\n"
        "scrape:\n  interval: 3600s\n  timeout: 1s\n"
        f"file_sd_configs:\n  - files: [{found}]\n    refresh_interval: 1s\n"
        "    interval: 3600s\n")
    bridge = Server([sys.executable, "-m", "promflux.bridge", "--config", str(config)], port,
                    ready_path="/healthz")
    try:
        wait_for(lambda: httpx.get(bridge.url + "/healthz").json(),
                 lambda h: h["schema_ready"], timeout=30)
        before = rss_mib(bridge)
        found.write_text(json.dumps(groups(COUNT)))
        slowest_in = watch_health(bridge, lambda h: h["targets"] == COUNT)
        peak = rss_mib(bridge)
        found.write_text("[]")
        slowest_out = watch_health(bridge, lambda h: h["targets"] == 0)
        after = wait_for(lambda: rss_mib(bridge),
                         lambda mib: mib - before < 0.3 * (peak - before), timeout=30)
        assert after - before < 0.6 * (peak - before), (before, peak, after)
        held = metric(bridge, "promflux_bridge_event_loop_longest_hold_cpu_seconds")
    finally:
        bridge.stop()
    assert held < 0.1, f"the event loop was held for {held * 1000:.0f} ms of CPU"
    # Wall time counts a loaded machine too: a bound well above the 0.1 s of CPU.
    assert max(slowest_in, slowest_out) < 1.0, (slowest_in, slowest_out)
    assert peak - before > 100, "the targets were not taken up"
    print(f"RSS {before:.0f} -> {peak:.0f} -> {after:.0f} MiB; held {held * 1000:.0f} ms; "
          f"slowest /healthz {max(slowest_in, slowest_out) * 1000:.0f} ms")


def test_the_tally_follows_every_status_and_removal():
    from promflux.bridge.ingest.loop import Tally, TargetStatus

    tally, statuses = Tally(), [TargetStatus("s", f"u{i}") for i in range(4)]

    def record(status: TargetStatus, up: bool, at: float) -> None:  # as a scrape ends
        tally.recorded(status, up)
        status.up, status.last_scrape = up, at

    record(statuses[0], True, 1.0)
    record(statuses[1], False, 1.0)
    record(statuses[0], False, 2.0)
    record(statuses[2], True, 2.0)
    record(statuses[2], True, 3.0)
    assert (tally.scraped, tally.up) == (3, 1)
    tally.gone(statuses[2])
    tally.gone(statuses[3])  # never scraped
    assert (tally.scraped, tally.up) == (2, 0)
    kept = statuses[:2]
    assert tally.scraped == sum(s.last_scrape is not None for s in kept)
    assert tally.up == sum(s.up for s in kept)
