"""A FastAPI service with every kind of route the exporter must label correctly."""

import asyncio
import json
import os

from fastapi import APIRouter, BackgroundTasks, FastAPI, Request, WebSocket, WebSocketDisconnect

from promflux import exporter

from . import changed_internals

changed_internals.apply()


class DeviceOfflineError(Exception):
    pass


app = FastAPI()

users = APIRouter(prefix="/users")


@users.get("/{user_id}")
async def get_user(user_id: int):
    return {"id": user_id}


app.include_router(users, prefix="/api/v1")

sub = FastAPI()


@sub.get("/hello/{name}")
async def hello(name: str):
    return {"hello": name}


app.mount("/sub", sub)


@app.get("/items/{item_id}")
async def get_item(item_id: int, delay_ms: int = 0):
    if delay_ms:
        await asyncio.sleep(delay_ms / 1000)
    return {"id": item_id}


@app.post("/upload", status_code=201)
async def upload(request: Request):
    return {"bytes": len(await request.body())}


@app.post("/items", status_code=201)
async def create_item():
    return {"created": True}


@app.get("/boom")
async def boom():
    raise DeviceOfflineError("device 7 is offline")


@app.get("/background")
async def background(tasks: BackgroundTasks):
    tasks.add_task(asyncio.sleep, 0.4)  # after the response: not latency
    return {"queued": True}


@app.get("/health")
async def health():
    return {"ok": True}


@app.post("/events/{kind}")
async def events(kind: str, n: int = 1):
    metrics.event(kind, n)
    return {"counted": n}


@app.post("/queue/roundtrip")
async def roundtrip(wait_ms: int):
    jobs.put_nowait("job")
    await asyncio.sleep(wait_ms / 1000)
    jobs.get_nowait()
    return {"waited_ms": wait_ms}


@app.websocket("/ws")
async def echo(websocket: WebSocket):
    await websocket.accept()
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        pass


@app.websocket("/ws/readings")
async def readings(websocket: WebSocket):
    """Messages {"type": reading|command|bye|boom, "sleep_ms": n}: handled and timed by
    type; "bye" closes with 4001, "boom" raises."""
    await websocket.accept()
    try:
        while True:
            message = json.loads(await websocket.receive_text())
            if message["type"] == "bye":
                await websocket.close(code=4001)
                return
            if message["type"] == "boom":
                raise RuntimeError("bad frame")
            async with metrics.message(message["type"]):
                await asyncio.sleep(message.get("sleep_ms", 0) / 1000)
                await websocket.send_text("ok")
    except WebSocketDisconnect:
        pass


_auth = None
if os.environ.get("METRICS_TOKEN"):
    _auth = exporter.MetricsAuth(bearer_token=os.environ["METRICS_TOKEN"])

_origins = os.environ.get("BROWSER_ORIGINS")
if _origins:  # the dashboard on another origin calls the API, as a real one would allow
    from fastapi.middleware.cors import CORSMiddleware

    app.add_middleware(CORSMiddleware, allow_origins=_origins.split(","), allow_methods=["*"],
                       allow_headers=["*"])
metrics = exporter.instrument(
    app, service=os.environ.get("SERVICE", "admin-api"), auth=_auth,
    browser_origins=_origins.split(",") if _origins else None,
    browser_auth=bool(os.environ.get("BROWSER_AUTH")))
jobs = metrics.queue("jobs")
metrics.size_callback("db_pool", lambda: 3)
if os.environ.get("BROKEN_CALLBACK"):
    metrics.size_callback("broken", lambda: 1 / 0)

if os.environ.get("BURN_PERCENT"):  # a steady CPU load, for the resource tests
    import threading
    import time

    def _burn(share: float = float(os.environ["BURN_PERCENT"]) / 100) -> None:
        while True:
            until = time.perf_counter() + 0.05 * share
            while time.perf_counter() < until:
                pass
            time.sleep(0.05 * (1 - share))

    threading.Thread(target=_burn, daemon=True).start()

# Resident memory held (filled, so it is really resident), for the container tests.
_held = b"\x01" * (int(os.environ.get("HOLD_MB", "0")) * 1024 * 1024)
