"""A worker the way its developer would write it: no web framework, sync and async jobs.

    python -m tests.apps.worker_app --port P --truth truth.json [--stop-file F] [--go-file G]

Runs a fixed plan once (``resize`` sync, decorated: 30 runs, every 5th raises ValueError;
``fetch`` async with ``async with``: 20 runs, every 4th raises KeyError, and one run is
cancelled), writes what it did to ``--truth``, then runs ``heartbeat`` every 0.2 s, which
succeeds until ``--stop-file`` exists and fails (RuntimeError) after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path

from promflux.exporter import MetricsAuth, start_metrics_server

SLEEPS = [0.002, 0.02, 0.07, 0.15, 0.4]  # each well inside one bucket of JOB_BUCKETS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--truth", type=Path, required=True)
    parser.add_argument("--stop-file", type=Path)
    parser.add_argument("--go-file", type=Path)  # wait for it before the plan
    args = parser.parse_args()
    token = os.environ.get("METRICS_TOKEN")
    metrics = start_metrics_server(
        "worker", args.port, addr="127.0.0.1",
        auth=MetricsAuth(bearer_token=token) if token else None)
    truth: dict[str, list[dict[str, object]]] = {"resize": [], "fetch": []}
    while args.go_file is not None and not args.go_file.exists():
        time.sleep(0.05)

    @metrics.job("resize")
    def resize(i: int) -> None:
        time.sleep(SLEEPS[i % len(SLEEPS)])
        if i % 5 == 4:
            raise ValueError("corrupt image")

    for i in range(30):
        try:
            resize(i)
            outcome = "success"
        except ValueError:
            outcome = "failure"
        truth["resize"].append({"sleep": SLEEPS[i % len(SLEEPS)], "outcome": outcome})

    async def fetch(i: int) -> None:
        async with metrics.job("fetch"):
            await asyncio.sleep(SLEEPS[i % len(SLEEPS)])
            if i % 4 == 3:
                raise KeyError("device")

    async def plan() -> None:
        queue = metrics.queue("downloads")
        for i in range(20):
            await queue.put(i)
            await queue.get()
            try:
                await fetch(i)
                outcome = "success"
            except KeyError:
                outcome = "failure"
            truth["fetch"].append({"sleep": SLEEPS[i % len(SLEEPS)], "outcome": outcome})
        task = asyncio.create_task(fetch(0))
        await asyncio.sleep(0.001)
        task.cancel()  # a deploy stopping the worker mid-run: cancelled, not failed
        try:
            await task
        except asyncio.CancelledError:
            truth["fetch"].append({"sleep": None, "outcome": "cancelled"})
        args.truth.write_text(json.dumps(truth))
        while True:
            try:
                async with metrics.job("heartbeat"):
                    if args.stop_file is not None and args.stop_file.exists():
                        raise RuntimeError("upstream gone")
            except RuntimeError:
                pass
            await asyncio.sleep(0.2)

    asyncio.run(plan())


if __name__ == "__main__":
    main()
