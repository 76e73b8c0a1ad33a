"""Alert states on steady noisy traffic and on injected problems, in compressed time
(tests/alert_scenario.py has the timeline), with the default rules and baselines fetched
from a real InfluxDB by the bridge's own job (docs/performance.md).

    .venv/bin/python bench/alert_scenario.py [--seeds 10]

For each scrape interval (5 s, 15 s) and seed: the state changes during the 30 quiet
minutes, and each problem's detection delay (from its start to the state change).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.alert_scenario import PROBLEMS, Result, run_with_influxdb  # noqa: E402
from tests.influx import InfluxServer  # noqa: E402

CHECKS = [("p95 45 -> 400 ms (regression)", "GET /steady", "p95_regression", "regression"),
          ("p95 45 -> 400 ms (regression)", "GET /steady", "p95_regression", "ok"),
          ("errors 3 % -> 16 %", "GET /errors", "error_rate_percent", "critical"),
          ("errors 3 % -> 16 %", "GET /errors", "error_rate_percent", "ok"),
          ("p95 600-800 ms (over 500)", "GET /report", "p95_ms", "warning"),
          ("p95 1,100-1,300 ms (over 1,000)", "GET /report", "p95_ms", "critical"),
          ("p95 1,100-1,300 ms (over 1,000)", "GET /report", "p95_ms", "ok")]


def resolves(result: Result) -> int:
    """Keys that returned to ok more than once per problem (flapping): should be 0."""
    flaps = 0
    for name in PROBLEMS:
        seen: dict[tuple[str, str, str], int] = {}
        for c in result.during(name):
            if c.level == "ok":
                key = (c.service, c.endpoint, c.metric)
                seen[key] = seen.get(key, 0) + 1
        flaps += sum(n - 1 for n in seen.values())
    return flaps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    server = InfluxServer()
    try:
        for interval in (5.0, 15.0):
            results = [asyncio.run(run_with_influxdb(server.url, f"b{int(interval)}_{seed}",
                                                     interval, seed))
                       for seed in range(1, args.seeds + 1)]
            quiet = [len(r.quiet()) for r in results]
            print(f"\n{interval:.0f} s scrapes, {len(results)} seeds: state changes in the "
                  f"30 quiet minutes: {sum(quiet)} (per seed {quiet}); repeated resolves "
                  f"per problem: {sum(resolves(r) for r in results)}")
            print(f"{'problem':34} {'state':38} {'min':>5} {'median':>6} {'max':>5}  (s)")
            for name, endpoint, metric, level in CHECKS:
                delays = [r.delay(name, endpoint, metric, level) for r in results]
                if level == "ok":  # measured from the problem's end
                    delays = [None if d is None else d - (PROBLEMS[name][1] - PROBLEMS[name][0])
                              for d in delays]
                found = [d for d in delays if d is not None]
                label = f"{endpoint} {metric} -> {level}"
                if not found:
                    print(f"{name:34} {label:38} never")
                    continue
                missing = len(delays) - len(found)
                print(f"{name:34} {label:38} {min(found):5.0f} {statistics.median(found):6.0f} "
                      f"{max(found):5.0f}" + (f"  ({missing} never)" if missing else ""))
    finally:
        server.close()


if __name__ == "__main__":
    main()
