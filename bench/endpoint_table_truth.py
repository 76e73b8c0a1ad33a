"""What the service dashboard's Endpoints table shows for a bimodal endpoint, next to the
truth measured by the client (docs/performance.md).

    .venv/bin/python bench/endpoint_table_truth.py [--minutes 5] [--interval 5s]

A real FastAPI service, the bridge scraping it every ``--interval`` into a real influxd,
and eight clients: 60.5 % of the requests take about 50 ms, 39.5 % between 600 and 1,000
ms. After ``--minutes`` it runs the table's query over that range (and the mean of
per-interval p95s the table used to show), asks the bridge's /api/percentiles, and prints
them beside the p95 of the response times the clients measured.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import Server, free_port, uvicorn_server, wait_for  # noqa: E402
from tests.influx import InfluxServer  # noqa: E402


def client(url: str, stop: threading.Event, seed: int, out: list[float]) -> None:
    rng = random.Random(seed)
    with httpx.Client(timeout=30) as http:
        while not stop.is_set():
            slow = rng.random() < 0.395
            delay = rng.randint(600, 1000) if slow else 50
            started = time.perf_counter()
            if http.get(f"{url}/items/{rng.randint(1, 99)}",
                        params={"delay_ms": delay}).status_code == 200:
                out.append(time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--interval", default="5s")
    args = parser.parse_args()
    influx = InfluxServer()
    api = uvicorn_server("tests.apps.fastapi_app:app")
    port = free_port()
    config = Path(influx.dir) / "bridge.yml"
    config.write_text(f"influxdb:\n  url: {influx.url}\n  database: table\nscrape:\n  "
                      f"interval: {args.interval}\n  timeout: 2s\nbuffer:\n  path: "
                      f"{influx.dir}/buffer\nlisten: 127.0.0.1:{port}\ntargets:\n"
                      f"  - service: api\n    url: {api.url}/metrics\n")
    bridge = Server([sys.executable, "-m", "promflux.bridge", "--config", str(config)], port,
                    ready_path="/healthz")
    stop, seen = threading.Event(), []
    try:
        wait_for(lambda: httpx.get(bridge.url + "/api/targets").json()[0]["scrapes"],
                 lambda n: n >= 2, timeout=60)
        start = time.time()
        threads = [threading.Thread(target=client, args=(api.url, stop, i, seen))
                   for i in range(8)]
        for thread in threads:
            thread.start()
        time.sleep(args.minutes * 60)
        stop.set()
        for thread in threads:
            thread.join()
        time.sleep(15)  # the last scrapes
        end = time.time()
        where = (f"\"service\" = 'api' AND \"endpoint\" = '/items/{{item_id}}' AND time >= "
                 f"{int(start * 1000)}ms AND time <= {int(end * 1000)}ms")
        table = influx.query('SELECT 100 * sum("requests_within_limit") / sum("requests"), '
                             'max("p95_ms"), mean("p95_ms"), sum("requests") FROM '
                             f'"performance_metrics" WHERE {where}', db="table")
        within, worst, mean_p95, requests = table[0]["values"][0][1:]
        exact = httpx.get(bridge.url + "/api/percentiles", params={
            "service": "api", "endpoint": "/items/{item_id}", "method": "GET",
            "start": start, "end": end}).json()
        seen.sort()
        client_p95 = seen[int(0.95 * (len(seen) - 1))] * 1000
        slow_share = 100 * sum(1 for s in seen if s > 0.5) / len(seen)
        print(f"{len(seen)} requests in {args.minutes:g} min at {args.interval} scrapes "
              f"({requests:.0f} stored); {slow_share:.1f} % over 500 ms by the clients' clocks")
        print(f"  true p95 (clients' clocks)        {client_p95:7.1f} ms")
        print(f"  /api/percentiles p95 (buckets)    {exact['p95_ms']:7.1f} ms")
        print(f"  table: within 500 ms              {within:7.1f} %  (red below 95 %)")
        print(f"  table: worst-window p95           {worst:7.1f} ms")
        print(f"  before: mean of interval p95s     {mean_p95:7.1f} ms  (green under 500 ms)")
    finally:
        stop.set()
        bridge.stop()
        api.stop()
        influx.close()


if __name__ == "__main__":
    main()
