"""What the bridge holds per tracked series, by the line that allocated it (tracemalloc),
in one process (docs/performance.md).

    .venv/bin/python bench/bridge_memory.py [--targets 20] [--top 32] [--scrapes 4]

The same targets as bench/bridge_vs_prometheus.py (nginx, the growing 2,140-sample page)
and a real influxd. The bridge is set up in this process and scrapes each target four
times by hand; allocations still held after that are summed per line. Its writer task
is not run, so the encoded write bodies stay queued and are in the total (the line in
``lineprotocol.py`` that joins a body): subtract it for what the bridge keeps.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tracemalloc
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from promflux.bridge.app import Bridge  # noqa: E402
from promflux.bridge.config import load  # noqa: E402

from bench.bridge_vs_prometheus import bridge_config, served_fleet  # noqa: E402


async def measure(config: Path, targets: int, samples: int, top: int, scrapes: int) -> None:
    bridge = Bridge(load(str(config)))
    await bridge.start()
    session = aiohttp.ClientSession()  # (the loops would use the bridge's own)
    await bridge.client.setup(7 * 86400, 30 * 86400, 90 * 86400)
    bridge.writer.set_ready()
    tracemalloc.start(1)
    before = tracemalloc.take_snapshot()
    for _ in range(scrapes):  # the baseline, then scrapes with increases
        for index in range(targets):
            await bridge.scrapers[index].scrape_once(session)
        await asyncio.sleep(1.1)  # the page grows every second
    stats = tracemalloc.take_snapshot().compare_to(before, "lineno")
    total = sum(stat.size_diff for stat in stats)
    series = targets * samples
    print(f"{targets} targets x {samples} samples: {total / 1e6:.1f} MB held, "
          f"{total / series:.0f} B per series")
    for stat in stats[:top]:
        frame = stat.traceback[0]
        where = frame.filename.removeprefix(f"{ROOT}/")
        print(f"  {stat.size_diff / series:6.0f} B/series  {stat.count_diff:8,} blocks  "
              f"{where}:{frame.lineno}")
    await session.close()
    await bridge.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", type=int, default=20)
    parser.add_argument("--top", type=int, default=32)
    parser.add_argument("--scrapes", type=int, default=4,
                        help="scrapes per target, about 1.1 s apart "
                        "(290 fills the 300 s threshold windows)")
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)
    with served_fleet("bench-memory-") as (d, influx, port, pages):
        asyncio.run(measure(bridge_config(d, "memory", influx.url, port, args.targets),
                            args.targets, pages.samples, args.top, args.scrapes))


if __name__ == "__main__":
    main()
