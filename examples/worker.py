"""Example: a background worker without a web framework, instrumented with promflux.

    python -m examples.worker --port 9200 --ingest http://127.0.0.1:8002 \\
        --api http://127.0.0.1:8001

Open http://127.0.0.1:9200/metrics. Every second the ``process_readings`` job takes a batch
from the ingest service's outbox and works through it via an instrumented queue; every five
seconds ``sync_devices`` reads the device list from the API; ``DEMO_WORKER_FAIL_PERCENT``
(default 5) of those runs fail, so failure rates have something to show. A service that is
down makes the run fail (and the next one try again); it never stops the worker.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
from collections.abc import Awaitable, Callable

import aiohttp
from promflux.exporter import Metrics, start_metrics_server

FAIL_PERCENT = float(os.environ.get("DEMO_WORKER_FAIL_PERCENT", "5"))


class UpstreamError(Exception):
    """The device API answered with an error."""


async def process_readings(metrics: Metrics, session: aiohttp.ClientSession, ingest: str,
                           queue: asyncio.Queue[dict[str, object]]) -> None:
    async with metrics.job("process_readings"):
        async with session.post(ingest + "/outbox/take", params={"max": "200"}) as response:
            response.raise_for_status()
            batch = (await response.json())["readings"]
        for reading in batch:
            queue.put_nowait(reading)
        await queue.join()  # the consumer has handled the whole batch


async def consume(metrics: Metrics, queue: asyncio.Queue[dict[str, object]]) -> None:
    while True:
        await queue.get()
        await asyncio.sleep(random.uniform(0.0, 0.002))  # aggregate, store
        metrics.event("reading_processed")
        queue.task_done()


async def sync_devices(metrics: Metrics, session: aiohttp.ClientSession, api: str) -> None:
    async with metrics.job("sync_devices"):
        async with session.get(api + "/api/devices") as response:
            response.raise_for_status()
            await response.json()
        if random.uniform(0, 100) < FAIL_PERCENT:
            raise UpstreamError("device list out of date")


async def every(seconds: float, run: Callable[[], Awaitable[None]]) -> None:
    while True:
        try:
            await run()
        except (aiohttp.ClientError, TimeoutError, UpstreamError, KeyError, ValueError):
            pass  # counted as a failed run by the job timer; the next run tries again
        await asyncio.sleep(seconds)


async def run(port: int, ingest: str, api: str) -> None:
    metrics = start_metrics_server(service=os.environ.get("SERVICE_NAME", "worker"), port=port,
                                   addr=os.environ.get("HOST", "127.0.0.1"))
    queue = metrics.queue("readings")
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(
            consume(metrics, queue),
            every(1.0, lambda: process_readings(metrics, session, ingest, queue)),
            every(5.0, lambda: sync_devices(metrics, session, api)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "9200")))
    parser.add_argument("--ingest", default=os.environ.get("INGEST_URL",
                                                            "http://127.0.0.1:8002"))
    parser.add_argument("--api", default=os.environ.get("API_URL", "http://127.0.0.1:8001"))
    args = parser.parse_args()
    try:
        asyncio.run(run(args.port, args.ingest, args.api))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
