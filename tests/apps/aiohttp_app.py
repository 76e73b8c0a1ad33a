"""An aiohttp HTTP + WebSocket ingestion service, partly instrumented with aioprometheus."""

import asyncio
import json
import os

import aioprometheus
from aiohttp import WSMsgType, web

from promflux import exporter

from . import changed_internals

changed_internals.apply()


class SensorError(Exception):
    pass


async def get_reading(request: web.Request) -> web.Response:
    delay_ms = int(request.query.get("delay_ms", "0"))
    if delay_ms:
        await asyncio.sleep(delay_ms / 1000)
    return web.json_response({"sensor": request.match_info["sensor"]})


async def post_reading(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({"stored": True}, status=201)


async def boom(request: web.Request) -> web.Response:
    raise SensorError("sensor bus down")


async def health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def legacy(request: web.Request) -> web.Response:
    request.app[LEGACY].inc({"path": "/legacy"})
    return web.Response(text="legacy")


async def events(request: web.Request) -> web.Response:
    n = int(request.query.get("n", "1"))
    request.app[METRICS].event(request.match_info["kind"], n)
    return web.json_response({"counted": n})


async def roundtrip(request: web.Request) -> web.Response:
    queue = request.app[QUEUE]
    queue.put_nowait("reading")
    await asyncio.sleep(int(request.query["wait_ms"]) / 1000)
    queue.get_nowait()
    return web.json_response({"ok": True})


async def ws_echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for message in ws:
        if message.type == WSMsgType.TEXT:
            await ws.send_str(message.data)
    return ws


async def ws_readings(request: web.Request) -> web.WebSocketResponse:
    """The same protocol as the FastAPI app's /ws/readings."""
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for frame in ws:
        if frame.type != WSMsgType.TEXT:
            continue
        message = json.loads(frame.data)
        if message["type"] == "bye":
            await ws.close(code=4001)
            break
        if message["type"] == "boom":
            raise RuntimeError("bad frame")
        async with request.app[METRICS].message(message["type"]):
            await asyncio.sleep(message.get("sleep_ms", 0) / 1000)
            await ws.send_str("ok")
    return ws


async def sub_status(request: web.Request) -> web.Response:
    return web.json_response({"id": request.match_info["device_id"]})


LEGACY = web.AppKey("legacy", aioprometheus.Counter) if hasattr(web, "AppKey") else "legacy"
METRICS = web.AppKey("metrics", exporter.Metrics) if hasattr(web, "AppKey") else "metrics"
QUEUE = web.AppKey("queue", asyncio.Queue) if hasattr(web, "AppKey") else "queue"


def create_app(argv: list[str] | None = None) -> web.Application:
    app = web.Application()
    app.router.add_get("/readings/{sensor}", get_reading)
    app.router.add_post("/readings", post_reading)
    app.router.add_get("/boom", boom)
    app.router.add_get("/health", health)
    app.router.add_get("/legacy", legacy)
    app.router.add_post("/events/{kind}", events)
    app.router.add_post("/queue/roundtrip", roundtrip)
    app.router.add_get("/ws", ws_echo)
    app.router.add_get("/ws/readings", ws_readings)
    sub = web.Application()
    sub.router.add_get("/devices/{device_id}", sub_status)
    app.add_subapp("/v2", sub)

    legacy_registry = aioprometheus.Registry()
    app[LEGACY] = aioprometheus.Counter(
        "legacy_requests_total", "Requests counted by the old aioprometheus code.",
        registry=legacy_registry,
    )
    if os.environ.get("PROMFLUX_AIOHTTP_MIDDLEWARE"):  # the fallback placement
        from promflux.exporter.aiohttp_adapter import instrument_aiohttp
        from promflux.exporter.handle import Metrics
        from promflux.exporter.recorder import Recorder

        recorder = Recorder("ingest", aioprometheus_registry=legacy_registry)
        instrument_aiohttp(app, recorder, use_middleware=True)
        metrics = Metrics(recorder)
    else:
        metrics = exporter.instrument(app, service="ingest",
                                      aioprometheus_registry=legacy_registry)
    app[METRICS] = metrics
    app[QUEUE] = metrics.queue("readings")
    return app


def create_instrumented_subapp(argv: list[str] | None = None) -> web.Application:
    """An application whose API lives in a sub-app, and only the sub-app is instrumented
    (its own /metrics under its prefix), as a team owning one part would do it."""
    api = web.Application()
    api.router.add_get("/devices/{device_id}", sub_status)
    exporter.instrument(api, service="devices")
    app = web.Application()
    app.router.add_get("/health", health)
    app.add_subapp("/api", api)
    return app
