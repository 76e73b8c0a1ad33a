"""Example: a sensor ingestion service (aiohttp HTTP + WebSocket), instrumented with promflux.

    python -m examples.ingest_service --port 8002

Open http://127.0.0.1:8002/metrics. Readings arrive by ``POST /ingest/{sensor}`` or as
WebSocket messages on ``/ws``; each is an event and goes through an instrumented queue
to a batch writer, which leaves them in an outbox that the example worker
(``examples.worker``) takes with ``POST /outbox/take``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
from collections import deque

from aiohttp import WSMsgType, web

from promflux import exporter

METRICS = web.AppKey("metrics", exporter.Metrics)
READINGS = web.AppKey("readings", asyncio.Queue)
WRITER = web.AppKey("writer", asyncio.Task)
OUTBOX = web.AppKey("outbox", deque)
OUTBOX_MAX = 10_000  # the oldest go when no worker takes them


async def ingest(request: web.Request) -> web.Response:
    try:
        reading = await request.json()
        value = float(reading["value"])
    except (ValueError, KeyError, TypeError):
        raise web.HTTPBadRequest(text="expected JSON with a numeric 'value'") from None
    request.app[READINGS].put_nowait((request.match_info["sensor"], value))
    request.app[METRICS].event("reading")
    return web.json_response({"stored": True}, status=201)


async def latest(request: web.Request) -> web.Response:
    await asyncio.sleep(random.expovariate(1 / 5) / 1000)
    return web.json_response({"sensor": request.match_info["sensor"], "value": 21.5})


async def stream(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    async for message in ws:
        if message.type != WSMsgType.TEXT:
            continue
        async with request.app[METRICS].message("reading"):  # handling time, by kind
            try:
                reading = json.loads(message.data)
                request.app[READINGS].put_nowait((reading["sensor"], float(reading["value"])))
            except (ValueError, KeyError, TypeError):
                await ws.send_str('{"error": "bad reading"}')
                continue
            request.app[METRICS].event("ws_reading")
            await ws.send_str('{"ok": true}')
    return ws


async def health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def take(request: web.Request) -> web.Response:
    """Up to ``max`` readings from the outbox (for the worker), oldest first."""
    try:
        limit = max(1, min(1000, int(request.query.get("max", "100"))))
    except ValueError:
        raise web.HTTPBadRequest(text="max must be a number") from None
    outbox = request.app[OUTBOX]
    batch = [outbox.popleft() for _ in range(min(limit, len(outbox)))]
    return web.json_response({"readings": [{"sensor": s, "value": v} for s, v in batch]})


async def write_batches(queue: asyncio.Queue[tuple[str, float]],
                        outbox: deque[tuple[str, float]]) -> None:
    while True:
        reading = await queue.get()
        await asyncio.sleep(random.uniform(0.001, 0.01))  # the batch store
        outbox.append(reading)


async def _start_writer(app: web.Application) -> None:
    app[WRITER] = asyncio.create_task(write_batches(app[READINGS], app[OUTBOX]))


async def _stop_writer(app: web.Application) -> None:
    app[WRITER].cancel()


def create_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/ingest/{sensor}", ingest)
    app.router.add_get("/sensors/{sensor}/latest", latest)
    app.router.add_get("/ws", stream)
    app.router.add_get("/health", health)
    app.router.add_post("/outbox/take", take)
    app[OUTBOX] = deque(maxlen=OUTBOX_MAX)
    app[METRICS] = exporter.instrument(app, service=os.environ.get("SERVICE_NAME", "ingest"))
    app[READINGS] = app[METRICS].queue("readings")
    app.on_startup.append(_start_writer)
    app.on_cleanup.append(_stop_writer)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8002")))
    args = parser.parse_args()
    web.run_app(create_app(), host=args.host, port=args.port, access_log=None)


if __name__ == "__main__":
    main()
