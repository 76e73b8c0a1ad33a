"""influxd's time for the percentile panels' query against the worst-scrape query it
replaced: one hour of 20 endpoints at 5 s scrapes, three percentiles, bins of 5 s, 60 s and
600 s; the two queries alternate, median of the rounds (docs/performance.md).

    .venv/bin/python bench/panel_query_cost.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "grafana"))

from percentile_sql import percentiles_query  # noqa: E402
from promflux.bridge.analyze import bucket_fields  # noqa: E402
from promflux.bridge.analyze.schema import OTHER_EXPORTER_BOUNDS, PANEL_BOUNDS  # noqa: E402
from promflux.bridge.jobs.layout import layout_points  # noqa: E402
from promflux.bridge.store.lineprotocol import encode_points  # noqa: E402

from tests.influx import InfluxServer  # noqa: E402


def fill(url: str, now: int) -> None:
    rng = random.Random(3)
    bounds = [*PANEL_BOUNDS, math.inf]
    lines = encode_points(layout_points(now)).decode().splitlines()
    for t in range(now - 3600, now, 5):
        for e in range(20):
            own = dict.fromkeys(bounds, 0)
            for _ in range(25):
                own[bounds[min(len(bounds) - 1, int(rng.expovariate(0.3)) + 4)]] += 1
            cumulative, total = {}, 0
            for b in bounds:
                total += own[b]
                cumulative[b] = total
            fields = ",".join(f"{k}={v}" for k, v in bucket_fields.fields(cumulative).items())
            lines.append(f"latency_buckets,service=api,endpoint=/e{e},method=GET {fields} "
                         f"{t * 1000}")
            lines.append(f"performance_metrics,service=api,endpoint=/e{e},method=GET "
                         f"p50_ms={rng.random()},p95_ms={rng.random() * 100},p99_ms=200 "
                         f"{t * 1000}")
    for i in range(0, len(lines), 5000):
        answer = httpx.post(url + "/write", params={"db": "bench", "precision": "ms"},
                            content="\n".join(lines[i:i + 5000]))
        assert answer.status_code == 204, answer.text


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    server = InfluxServer()
    try:
        httpx.post(server.url + "/query", params={"q": "CREATE DATABASE bench"})
        now = int(time.time()) // 5 * 5
        fill(server.url, now)
        where = f'"service" =~ /^api$/ AND time >= {(now - 3600) * 1000}ms AND ' \
                f"time <= {now * 1000}ms"
        exact = percentiles_query(PANEL_BOUNDS, '"latency_buckets"', where, '"endpoint"',
                                  {"p50": 0.5, "p95": 0.95, "p99": 0.99},
                                  OTHER_EXPORTER_BOUNDS)
        worst = ('SELECT max("p50_ms") AS "p50", max("p95_ms") AS "p95", max("p99_ms") AS '
                 f'"p99" FROM "performance_metrics" WHERE {where} GROUP BY time($__interval), '
                 '"endpoint" fill(none)')
        for width in ("5s", "60s", "600s"):
            times: dict[str, list[float]] = {"exact": [], "worst scrape": []}
            for _ in range(args.rounds):
                for name, query in (("worst scrape", worst), ("exact", exact)):
                    started = time.perf_counter()
                    answer = httpx.post(server.url + "/query", timeout=300, data={
                        "db": "bench", "q": query.replace("$__interval", width)})
                    times[name].append(time.perf_counter() - started)
                    assert answer.status_code == 200 and '"error"' not in answer.text[:300]
            print(f"bins of {width:>4}: " + ", ".join(
                f"{name} {statistics.median(v) * 1000:,.0f} ms" for name, v in times.items()))
    finally:
        server.close()


if __name__ == "__main__":
    main()
