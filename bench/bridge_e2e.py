"""Bridge CPU per sample end to end: HTTP scrape, parse, derive, encode and the write to a
real InfluxDB (docs/performance.md).

    .venv/bin/python bench/bridge_e2e.py [--targets 5] [--rounds 5]

The targets are served by a separate process and InfluxDB is Debian's influxd on a free
loopback port, so the CPU time measured (``time.process_time`` of this process) is the
bridge's alone.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from promflux.bridge.app import Bridge  # noqa: E402
from promflux.bridge.config import BridgeConfig  # noqa: E402

from bench.exporter_overhead import free_port, wait_port  # noqa: E402
from tests.influx import InfluxServer  # noqa: E402

SERVER = """
import sys
from aiohttp import web
from bench.bridge_throughput import exposition
targets, rounds, port = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
texts = [[exposition(t, s) for s in range(rounds + 2)] for t in range(targets)]
steps = [0] * targets
async def metrics(request):
    t = int(request.match_info["t"])
    text = texts[t][min(steps[t], rounds + 1)]
    steps[t] += 1
    return web.Response(text=text, content_type="text/plain")
app = web.Application()
app.router.add_get("/t{t}/metrics", metrics)
web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)
"""


async def measure(targets: int, rounds: int, influx: InfluxServer, port: int) -> None:
    config = BridgeConfig.model_validate({
        "influxdb": {"url": influx.url, "database": "bench"},
        "buffer": {"path": tempfile.mkdtemp(prefix="bench-buffer-")},
        "listen": f"127.0.0.1:{free_port()}",
        "targets": [{"service": f"svc{t}", "url": f"http://127.0.0.1:{port}/t{t}/metrics"}
                    for t in range(targets)]})
    bridge = Bridge(config)
    await bridge.start()
    session = aiohttp.ClientSession()  # (the loops would use the bridge's own)
    await bridge.client.setup(7 * 86400, 30 * 86400, 90 * 86400)
    bridge.writer.set_ready()  # what the bridge's set-up loop does once the database exists
    for index in range(targets):  # baseline scrape
        await bridge.scrapers[index].scrape_once(session)
    best = float("inf")
    samples = points = 0
    for _ in range(rounds):
        cpu = time.process_time()
        samples = points = 0
        for index, scraper in enumerate(bridge.scrapers):
            points += len(await bridge.scrapers[index].scrape_once(session))
            samples += scraper.status.samples
        best = min(best, (time.process_time() - cpu) / samples * 1e6)
    written = bridge.writer.metrics.points._value.get()
    await session.close()
    await bridge.close()
    assert written > 0 and not len(bridge.buffer), "the points did not reach InfluxDB"
    print(f"{targets} targets x {samples // targets} samples, {points} points per round; "
          f"{written:.0f} points written in all")
    print(f"bridge CPU per scraped sample, end to end (min of {rounds} rounds): {best:.2f} us")


def main() -> None:
    logging.getLogger("promflux").setLevel(logging.ERROR)  # threshold changes are not news here
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(args.targets),
                               str(args.rounds), str(port)], cwd=ROOT)
    influx = InfluxServer()
    try:
        wait_port(port)
        asyncio.run(measure(args.targets, args.rounds, influx, port))
    finally:
        server.terminate()
        influx.close()


if __name__ == "__main__":
    main()
