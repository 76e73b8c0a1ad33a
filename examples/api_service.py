"""Example: a home-automation admin API (FastAPI), instrumented with promflux.

    uvicorn examples.api_service:app --port 8001

Open http://127.0.0.1:8001/metrics. Device commands go through an instrumented queue
worked by a background task. ``DEMO_ERROR_PERCENT`` (default 2) of command posts fail with
a ``DeviceOfflineError``; ``DEMO_SLOW_MS`` adds latency to every request (to watch a
regression arrive on the dashboards and the bridge's status page).
"""

from __future__ import annotations

import asyncio
import os
import random
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, HTTPException

from promflux import exporter


class DeviceOfflineError(Exception):
    """A device did not answer."""


DEVICES = {f"dev-{i}": {"id": f"dev-{i}", "room": ("kitchen", "hall", "garage")[i % 3]}
           for i in range(12)}
ERROR_PERCENT = float(os.environ.get("DEMO_ERROR_PERCENT", "2"))


async def pause() -> None:
    slow = float(os.environ.get("DEMO_SLOW_MS", "0"))
    await asyncio.sleep((random.expovariate(1 / 8) + slow) / 1000)


async def work_commands(queue: asyncio.Queue[str]) -> None:
    while True:
        await queue.get()
        await asyncio.sleep(random.uniform(0.005, 0.03))  # talking to the device
        metrics.event("command_executed")


@asynccontextmanager
async def lifespan(app: FastAPI):  # noqa: ANN201
    worker = asyncio.create_task(work_commands(commands))
    yield
    worker.cancel()


app = FastAPI(title="admin-api", lifespan=lifespan)
metrics = exporter.instrument(app, service=os.environ.get("SERVICE_NAME", "admin-api"))
commands = metrics.queue("device_commands")
api = APIRouter(prefix="/api")


@api.get("/devices")
async def list_devices() -> list[dict[str, str]]:
    await pause()
    return list(DEVICES.values())


@api.get("/devices/{device_id}")
async def get_device(device_id: str) -> dict[str, str]:
    await pause()
    if device_id not in DEVICES:
        raise HTTPException(404, "no such device")
    return DEVICES[device_id]


@api.post("/devices/{device_id}/commands", status_code=202)
async def send_command(device_id: str) -> dict[str, bool]:
    await pause()
    if device_id not in DEVICES:
        raise HTTPException(404, "no such device")
    if random.uniform(0, 100) < ERROR_PERCENT:
        raise DeviceOfflineError(device_id)
    commands.put_nowait(device_id)
    return {"queued": True}


@api.get("/rooms/{room}/scenes")
async def room_scenes(room: str) -> list[str]:
    await asyncio.sleep(random.uniform(0.02, 0.12))  # a slower, heavier query
    return ["evening", "away"]


@app.get("/health")
async def health() -> dict[str, bool]:
    return {"ok": True}


app.include_router(api)
