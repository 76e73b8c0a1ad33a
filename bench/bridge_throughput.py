"""Bridge CPU time per scraped sample (docs/performance.md).

    .venv/bin/python bench/bridge_throughput.py [--targets 5] [--rounds 5]

Builds expositions like a busy service's (about 4,000 samples: latency histograms for 60
routes x 3 statuses plus resources), then per round and target: parse with the target's
series cache, derive against the previous scrape, encode line protocol. Reports CPU
microseconds per sample for each stage (min over rounds), prometheus_client's parser on
the same text for comparison, and memory per tracked series.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402
from promflux.bridge.analyze.derive import TargetDeriver  # noqa: E402
from promflux.bridge.ingest.exposition import parse  # noqa: E402
from promflux.bridge.store.lineprotocol import LineEncoder  # noqa: E402

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5,
           0.6, 0.75, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0)


def exposition(seed: int, step: int) -> str:
    rng = random.Random(seed)
    registry = CollectorRegistry()
    latency = Histogram("http_request_duration_seconds", "d",
                        ["service", "route", "method", "status"], buckets=BUCKETS,
                        registry=registry)
    events = Counter("events_processed", "d", ["service", "kind"], registry=registry)
    cpu = Gauge("service_cpu_percent", "d", ["service", "pid"], registry=registry)
    # The page at ``step`` holds every request of the steps before it too: counters only
    # grow, and each bucket's increase is at least the one's below it, as on a real target.
    for _ in range(step + 1):
        for route in range(60):
            for status in ("200", "404", "500"):
                child = latency.labels("svc", f"/api/v1/things/{route}/{{id}}", "GET", status)
                for _ in range(3 + rng.randint(0, 3)):
                    child.observe(rng.random() * 0.6)
    for kind in range(20):
        events.labels("svc", f"kind{kind}").inc(step * 10 + kind)
    cpu.labels("svc", "1").set(rng.random() * 100)
    return generate_latest(registry).decode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    texts = [[exposition(t, step) for step in range(args.rounds + 1)]
             for t in range(args.targets)]
    samples = sum(1 for line in texts[0][0].split("\n") if line and line[0] != "#")
    derivers = [TargetDeriver(f"svc{t}") for t in range(args.targets)]
    encoder = LineEncoder()
    for t, deriver in enumerate(derivers):  # the baseline scrape
        deriver.derive(parse(texts[t][0], deriver.cache), 0.0)
    best = {"parse": float("inf"), "derive": float("inf"), "encode": float("inf")}
    points_per_scrape = 0
    gc.collect()
    for r in range(1, args.rounds + 1):
        spent = {"parse": 0.0, "derive": 0.0, "encode": 0.0}
        for t, deriver in enumerate(derivers):
            t0 = time.process_time()
            scrape = parse(texts[t][r], deriver.cache)
            t1 = time.process_time()
            points = deriver.derive(scrape, 15.0 * r)
            t2 = time.process_time()
            encoder.encode(points)
            t3 = time.process_time()
            spent["parse"] += t1 - t0
            spent["derive"] += t2 - t1
            spent["encode"] += t3 - t2
            points_per_scrape = len(points)
        for stage, seconds in spent.items():
            best[stage] = min(best[stage], seconds / (samples * args.targets) * 1e6)
    t0 = time.process_time()
    sum(1 for f in text_string_to_metric_families(texts[0][1]) for _ in f.samples)
    reference = (time.process_time() - t0) / samples * 1e6

    tracemalloc.start()
    fresh = TargetDeriver("mem")
    before = tracemalloc.take_snapshot()
    fresh.derive(parse(texts[0][0], fresh.cache), 0.0)
    fresh.derive(parse(texts[0][1], fresh.cache), 15.0)
    after = tracemalloc.take_snapshot()
    held = sum(s.size_diff for s in after.compare_to(before, "filename"))
    tracemalloc.stop()

    total = sum(best.values())
    print(f"{args.targets} targets x {samples} samples, {points_per_scrape} points per scrape; "
          f"CPU us per sample (min of {args.rounds} rounds)")
    for stage, us in best.items():
        print(f"  {stage:8s} {us:6.3f}")
    print(f"  total    {total:6.3f}   (prometheus_client's parser alone: {reference:.2f})")
    print(f"memory per tracked series: about {held / samples:.0f} bytes")


if __name__ == "__main__":
    main()
