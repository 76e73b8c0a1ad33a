"""What one /metrics scrape a second costs a loaded FastAPI service with 450 request series
(50 routes x 3 methods x 3 statuses), this tree against a git revision, in one run
(docs/performance.md).

    .venv/bin/python bench/scrape_under_load.py [--against a2b53b4] [--rounds 5]

The server runs on core 0 (uvicorn, one process); wrk (1 thread, 16 connections) drives
GET /noop from core 1 for --seconds; in half the rounds a client on core 1 also fetches
/metrics once a second (curl). Rounds interleave the four cases; the median of the rounds and the
spread (min-max) are reported, and each tree's "scraped / not scraped" ratio; then the
server's own CPU per scrape without load, which the throughput noise cannot hide.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bridge_instructions import export  # noqa: E402
from bench.exporter_overhead import ENV, PY, free_port, wait_port, wrk_rps  # noqa: E402

SERVER = """
import promflux, sys
promflux.__path__.insert(0, {root!r})
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
import uvicorn
from promflux import exporter

app = FastAPI()

@app.get("/noop")
async def noop():
    return {{}}

for r in range(50):
    for method in ("get", "post", "put"):
        getattr(app, method)(f"/api/things{{r}}/{{{{thing_id}}}}")(noop)
metrics = exporter.instrument(app, service="bench", registry=CollectorRegistry())
recorder = metrics._recorder
for r in range(50):  # every route and method also answered 404 and 500 once: 450 series
    for method in ("GET", "POST", "PUT"):
        for status in (200, 404, 500):
            recorder.requests.observe((f"/api/things{{r}}/{{{{thing_id}}}}", method, status),
                                      0.002)
uvicorn.run(app, host="127.0.0.1", port={port}, log_level="warning", access_log=False)
"""

# The scraper is curl (C): little CPU of its own on the client core, beside wrk.
SCRAPER = ("end=$((SECONDS + {seconds})); while [ $SECONDS -lt $end ]; do "
           "curl -s -o /dev/null http://127.0.0.1:{port}/metrics; sleep 1; done")


def rps(root: Path, scraped: bool, seconds: int) -> float:
    port = free_port()
    side = ["bash", "-c", SCRAPER.format(port=port, seconds=seconds)] if scraped else None
    return wrk_rps([PY, "-c", SERVER.format(root=str(root), port=port)], port, seconds, side)


def cpu_per_scrape(root: Path, scrapes: int = 20) -> tuple[float, int]:
    """The server's own CPU seconds per /metrics request, without load (psutil)."""
    import urllib.request

    import psutil

    port = free_port()
    server = subprocess.Popen([PY, "-c", SERVER.format(root=str(root), port=port)], env=ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        url = f"http://127.0.0.1:{port}/metrics"
        urllib.request.urlopen(url).read()
        process = psutil.Process(server.pid)
        before = sum(process.cpu_times()[:2])
        for _ in range(scrapes):
            body = urllib.request.urlopen(url).read()
        return (sum(process.cpu_times()[:2]) - before) / scrapes, len(body)
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--against", default="a2b53b4")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    trees = {args.against: export(args.against, "exporter"), "this tree": ROOT}
    results: dict[tuple[str, bool], list[float]] = {
        (t, s): [] for t in trees for s in (False, True)}
    for _ in range(args.rounds):
        for tree, root in trees.items():
            for scraped in (False, True):
                results[tree, scraped].append(rps(root, scraped, args.seconds))
                time.sleep(0.5)
    print(f"requests/s, median of {args.rounds} rounds (min-max); /metrics once a second:")
    for tree in trees:
        quiet, busy = (statistics.median(results[tree, s]) for s in (False, True))
        for scraped in (False, True):
            r = results[tree, scraped]
            print(f"  {tree:10} {'scraped' if scraped else 'not scraped':12} "
                  f"{statistics.median(r):8.0f}  ({min(r):.0f}-{max(r):.0f})")
        print(f"  {tree:10} scraped / not scraped: {busy / quiet:.3f}")
    print("server CPU per scrape, no load (mean of 20):")
    for tree, root in trees.items():
        seconds, size = cpu_per_scrape(root)
        print(f"  {tree:10} {seconds * 1000:6.1f} ms  ({size:,} bytes)")


if __name__ == "__main__":
    main()
