"""Example load: steady traffic for the two example services, so the dashboards move.

    python -m examples.loadgen --api http://127.0.0.1:8001 --ingest http://127.0.0.1:8002

About ``--rate`` requests per second in all (default 20): device reads and commands,
unknown devices (404), scene queries, sensor posts, and two WebSocket clients streaming
readings. Stops on Ctrl-C; a service that is down is retried, never fatal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random

import aiohttp


async def http_load(session: aiohttp.ClientSession, api: str, ingest: str,
                    rate: float) -> None:
    calls = [
        (6, "GET", api + "/api/devices/dev-{n}", None),
        (2, "GET", api + "/api/devices", None),
        (2, "POST", api + "/api/devices/dev-{n}/commands", None),
        (1, "GET", api + "/api/devices/ghost-{n}", None),
        (1, "GET", api + "/api/rooms/kitchen/scenes", None),
        (6, "POST", ingest + "/ingest/sensor-{n}", {"value": 21.0}),
        (2, "GET", ingest + "/sensors/sensor-{n}/latest", None),
    ]
    weights = [c[0] for c in calls]
    while True:
        _, method, url, body = random.choices(calls, weights)[0]
        url = url.format(n=random.randrange(12))
        with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
            async with session.request(method, url, json=body) as response:
                await response.read()
        await asyncio.sleep(random.expovariate(rate))


async def ws_client(session: aiohttp.ClientSession, ingest: str, sensor: int) -> None:
    messages = random.randint(3, 8)  # a short first connection: closes show up early
    while True:
        try:
            async with session.ws_connect(ingest.replace("http", "ws", 1) + "/ws") as ws:
                for _ in range(messages):  # then close (1000) and reconnect
                    await ws.send_str(json.dumps({"sensor": f"ws-{sensor}",
                                                  "value": random.gauss(21, 2)}))
                    await ws.receive()
                    await asyncio.sleep(random.uniform(0.2, 1.0))
            messages = random.randint(50, 200)
        except (TimeoutError, aiohttp.ClientError):
            await asyncio.sleep(1)


async def run(api: str, ingest: str, rate: float, workers: int) -> None:
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        tasks = [http_load(session, api, ingest, rate / workers) for _ in range(workers)]
        tasks += [ws_client(session, ingest, i) for i in range(2)]
        await asyncio.gather(*tasks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--api", default=os.environ.get("API_URL", "http://127.0.0.1:8001"))
    parser.add_argument("--ingest",
                        default=os.environ.get("INGEST_URL", "http://127.0.0.1:8002"))
    parser.add_argument("--rate", type=float, default=float(os.environ.get("RATE", "20")))
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args.api.rstrip("/"), args.ingest.rstrip("/"), args.rate, args.workers))


if __name__ == "__main__":
    main()
