"""The same FastAPI service instrumented by the libraries the bridge has presets for."""

import asyncio
import os

from fastapi import FastAPI

app = FastAPI()


@app.get("/items/{item_id}")
async def get_item(item_id: int, delay_ms: int = 0):
    if delay_ms:
        await asyncio.sleep(delay_ms / 1000)
    return {"id": item_id}


@app.get("/fail")
async def fail():
    raise RuntimeError("boom")


@app.get("/health")
async def health():
    return {"ok": True}


kind = os.environ["EXPORTER_KIND"]
if kind == "prometheus-fastapi-instrumentator":
    from prometheus_fastapi_instrumentator import Instrumentator

    Instrumentator().instrument(app).expose(app)
elif kind == "starlette-exporter":
    from starlette_exporter import PrometheusMiddleware, handle_metrics

    app.add_middleware(PrometheusMiddleware)
    app.add_route("/metrics", handle_metrics)
elif kind == "aioprometheus":
    from aioprometheus import MetricsMiddleware
    from aioprometheus.asgi.starlette import metrics

    app.add_middleware(MetricsMiddleware)
    app.add_route("/metrics", metrics)
