"""An HA pair on a loaded machine: requests at random moments for a while, then the stored
total against the served one, per target (docs/scaling.md).

    .venv/bin/python bench/ha_under_load.py [--seconds 90] [--hogs 2]

Three targets of the test fleet, both replicas scraping every second, a real influxd, and
``--hogs`` busy loops (``yes``) to make scrapes late. The standby writes only what the
primary did not store, so while both run, every stored point is the primary's.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import aiohttp_server  # noqa: E402
from tests.influx import InfluxServer  # noqa: E402
from tests.test_bridge_ha import start_pair, written  # noqa: E402

TARGETS = 3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--hogs", type=int, default=2)
    args = parser.parse_args()
    influx = InfluxServer()
    fleet = aiohttp_server("tests.apps.fleet:app")
    hogs = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) for _ in range(args.hogs)]
    targets = "targets:\n" + "".join(
        f"  - {{service: s{n}, url: '{fleet.url}/t/{n}/metrics'}}\n" for n in range(TARGETS))
    bridges = start_pair(Path(tempfile.mkdtemp()), influx, "ha_load", targets)
    try:
        time.sleep(5)  # both replicas past their baseline scrape
        rng = random.Random(1)
        served = dict.fromkeys(range(TARGETS), 0)
        end = time.time() + args.seconds
        while time.time() < end:
            n = rng.randrange(TARGETS)
            httpx.post(f"{fleet.url}/t/{n}/add", params={"count": 1})
            served[n] += 1
            time.sleep(rng.uniform(0, 0.02))
        time.sleep(5)  # the last slots scraped and written
        for n in range(TARGETS):
            found = influx.query(
                f'SELECT sum("requests") FROM "performance_metrics" WHERE "service" = \'s{n}\' '
                "AND \"endpoint\" != '_all'", db="ha_load")
            stored = found[0]["values"][0][1] if found else 0
            print(f"s{n}: served {served[n]}, stored {stored} ({stored - served[n]:+d})")
        for name, bridge in zip(("primary", "standby"), bridges, strict=True):
            print(f"{name}: {written(bridge):.0f} points written")
    finally:
        for hog in hogs:
            hog.kill()
        for bridge in bridges:
            bridge.stop()
        fleet.stop()
        influx.close()


if __name__ == "__main__":
    main()
