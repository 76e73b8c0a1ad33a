"""What one /metrics scrape a second costs a loaded FastAPI service with 450 request series
(50 routes x 3 methods x 3 statuses), this tree against a git revision, in one run
(docs/performance.md).

    .venv/bin/python bench/scrape_under_load.py [--against a2b53b4] [--rounds 5]

The server runs on core 0 (uvicorn, one process); wrk (1 thread, 16 connections) drives
GET /noop from core 1 for --seconds; in half the rounds a client on core 1 also fetches
/metrics once a second. Rounds interleave the four cases; the median of the rounds and the
spread (min-max) are reported, and each tree's "scraped / not scraped" ratio.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.exporter_overhead import ENV, PY, free_port, wait_port  # noqa: E402

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

SCRAPER = """
import sys, time, urllib.request
end = time.monotonic() + {seconds}
while time.monotonic() < end:
    started = time.monotonic()
    urllib.request.urlopen("http://127.0.0.1:{port}/metrics").read()
    time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
"""


def export(revision: str) -> Path:
    archive = subprocess.run(["git", "archive", revision, "exporter", "promflux"], cwd=ROOT,
                             check=True, capture_output=True).stdout
    directory = Path(tempfile.mkdtemp(prefix="exporter-"))
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(directory, filter="data")
    return directory


def rps(root: Path, scraped: bool, seconds: int) -> float:
    port = free_port()
    server = subprocess.Popen(["taskset", "-c", "0", PY, "-c",
                               SERVER.format(root=str(root), port=port)], env=ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        url = f"http://127.0.0.1:{port}/noop"
        subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c16", "-d1s", url],
                       capture_output=True, check=True)
        scraper = subprocess.Popen(["taskset", "-c", "1", PY, "-c", SCRAPER.format(
            port=port, seconds=seconds)]) if scraped else None
        out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c16", f"-d{seconds}s",
                              url], capture_output=True, text=True, check=True).stdout
        if scraper is not None:
            scraper.wait(30)
        match = re.search(r"Requests/sec:\s+([\d.]+)", out)
        assert match, out
        return float(match.group(1))
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--against", default="a2b53b4")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    trees = {args.against: export(args.against), "this tree": ROOT}
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


if __name__ == "__main__":
    main()
