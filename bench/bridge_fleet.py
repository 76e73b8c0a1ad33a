"""One bridge, a fleet of targets at 15 s (docs/performance.md, docs/scaling.md).

    .venv/bin/python bench/bridge_fleet.py [--targets 1000] [--routes 37] [--interval 15]
        [--seconds 120] [--warmup 45]

Every target serves the same page from Debian's nginx (a service of ``--routes`` routes
rendered by the exporter itself; 37 routes is about 1,600 samples), its counters growing
every second. One bridge (``python -m promflux.bridge``, default settings) scrapes them all
into a real influxd. Over the measured window, after a warm-up:

* each scrape's start lag: its time in nginx's log less the target's slot (the bridge
  scrapes target t at ``start_offset(t) + k x interval`` on the wall clock); p50/p99/max;
* missed intervals: slots of a target with no scrape;
* CPU of the bridge and of influxd per scraped sample, the bridge's share of a core;
* the bridge's RSS growth per series, against a bridge scraping one target;
* the bridge's own counters (points written and dropped, scrapes put off).
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bridge_vs_prometheus import (  # noqa: E402
    bridge_argv,
    bridge_config,
    bridge_rss_one_target,
    cpu_seconds,
    own_counters,
    rss_mib,
    scrapes,
    served_fleet,
)
from bench.exporter_overhead import free_port, wait_port  # noqa: E402


def slot_lags(times: dict[str, list[float]], port: int, interval: float, start: float,
              end: float) -> tuple[list[float], int]:
    """Lags of every scrape behind its slot, and the slots in [start, end) not scraped."""
    from promflux.bridge.config import Target
    from promflux.bridge.ingest.loop import start_offset

    lags: list[float] = []
    missed = 0
    for uri, seen in times.items():
        service = "svc" + uri.split("/")[1][1:]
        target = Target(service=service, url=f"http://127.0.0.1:{port}{uri}")
        offset = start_offset(target, interval)
        lags += [(t - offset) % interval for t in seen]
        first = math.ceil((start - offset) / interval)
        slots = range(first, math.floor((end - offset) / interval) + 1)
        hit = {math.floor((t - offset) / interval) for t in seen}
        missed += sum(1 for k in slots if offset + k * interval < end - interval
                      and k not in hit)
    return lags, missed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--routes", type=int, default=37)
    parser.add_argument("--interval", type=float, default=15.0)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--warmup", type=float, default=45.0)
    args = parser.parse_args()
    with served_fleet("bench-fleet-", args.routes) as (d, influx, port, pages):
        rss_one = bridge_rss_one_target(d, influx.url, port, None, args.interval)
        listen = free_port()
        config = bridge_config(d, "fleet", influx.url, port, args.targets, listen,
                               args.interval)
        bridge = subprocess.Popen(bridge_argv(config, None), cwd=ROOT)
        try:
            wait_port(listen, timeout=120)
            time.sleep(args.warmup)
            assert influx.proc is not None
            pids = {"bridge": bridge.pid, "influxd": influx.proc.pid}
            before = {n: cpu_seconds(p) for n, p in pids.items()}
            start = time.time()
            time.sleep(args.seconds)
            end = time.time()
            cpu = {n: cpu_seconds(p) - before[n] for n, p in pids.items()}
            rss = rss_mib(bridge.pid)
            time.sleep(1.5)  # nginx flushes its log every second
            report(args, pages.samples, scrapes(d / "access.log", start, end).get("Python", {}),
                   port, start, end, cpu, rss, rss_one)
            print("  bridge's own counters (whole run): " + "; ".join(
                f"{name} {value:,.0f}" for name, value in own_counters(listen).items()))
        finally:
            bridge.terminate()
            bridge.wait(60)


def report(args: argparse.Namespace, samples: int, seen: dict[str, list[float]], port: int,
           start: float, end: float, cpu: dict[str, float], rss: float,
           rss_one: float) -> None:
    seconds = end - start
    done = sum(len(t) for t in seen.values())
    expected = args.targets * seconds / args.interval
    lags, missed = slot_lags(seen, port, args.interval, start, end)
    lags.sort()

    def pct(q: float) -> float:
        return lags[min(len(lags) - 1, int(len(lags) * q))] if lags else float("nan")

    scraped = done * samples
    print(f"{args.targets} targets x {samples} samples at {args.interval:g} s, "
          f"{seconds:.0f} s measured ({psutil.cpu_count()} cores)")
    print(f"  scrapes {done:,} of {expected:,.0f} slots ({done / expected * 100:.1f} %); "
          f"missed intervals {missed}; start lag p50 {pct(0.5):.3f} s, p99 {pct(0.99):.3f} s, "
          f"max {lags[-1] if lags else float('nan'):.3f} s")
    print(f"  bridge  CPU {cpu['bridge'] / seconds * 100:5.1f} % of a core, "
          f"{cpu['bridge'] / max(scraped, 1) * 1e6:5.2f} us per scraped sample; RSS {rss:.0f} MiB")
    print(f"  influxd CPU {cpu['influxd'] / seconds * 100:5.1f} % of a core, "
          f"{cpu['influxd'] / max(scraped, 1) * 1e6:5.2f} us per scraped sample")
    series = (args.targets - 1) * samples
    print(f"  bridge RSS growth per series: {(rss - rss_one) * 1048576 / series:.0f} bytes "
          f"({rss_one:.0f} MiB at 1 target, {rss:.0f} MiB at {args.targets}; "
          f"{series:,} series more)")


if __name__ == "__main__":
    main()
