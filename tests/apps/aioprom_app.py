"""A FastAPI and an aiohttp service that keep metrics of every aioprometheus type (with and
without labels, with const labels) and show them on promflux's /metrics.

    POST /observe   records the fixed set of observations below, once more
"""

from __future__ import annotations

import aioprometheus
from aiohttp import web
from fastapi import FastAPI

from promflux import exporter

# (labels, value) observed per POST /observe, for every metric below
OBSERVED = [({"room": "hall"}, 0.3), ({"room": "hall"}, 2.0), ({"room": "attic"}, 0.02),
            ({}, 0.7)]


def legacy_metrics() -> tuple[aioprometheus.Registry, list[object]]:
    registry = aioprometheus.Registry()
    const = {"plant": "north"}
    metrics = [
        aioprometheus.Counter("legacy_events_total", "Events.", registry=registry),
        aioprometheus.Gauge("legacy_temperature_celsius", "Temperature.",
                            const_labels=const, registry=registry),
        aioprometheus.Summary("legacy_payload_bytes", "Payload sizes.", registry=registry),
        aioprometheus.Histogram("legacy_handling_seconds", "Handling time.",
                                const_labels=const, buckets=[0.05, 0.5, 1.0],
                                registry=registry),
    ]
    return registry, metrics


def observe(metrics: list[object]) -> None:
    counter, gauge, summary, histogram = metrics
    for labels, value in OBSERVED:
        counter.inc(labels)  # type: ignore[attr-defined]
        gauge.set(labels, value)  # type: ignore[attr-defined]
        summary.observe(labels, value)  # type: ignore[attr-defined]
        histogram.observe(labels, value)  # type: ignore[attr-defined]


def create_fastapi() -> FastAPI:
    registry, metrics = legacy_metrics()
    app = FastAPI()

    @app.post("/observe")
    async def post_observe() -> dict[str, bool]:
        observe(metrics)
        return {"ok": True}

    exporter.instrument(app, service="legacy-fastapi", aioprometheus_registry=registry)
    return app



def create_aiohttp(argv: list[str] | None = None) -> web.Application:
    registry, metrics = legacy_metrics()

    async def post_observe(request: web.Request) -> web.Response:
        observe(metrics)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/observe", post_observe)
    exporter.instrument(app, service="legacy-aiohttp", aioprometheus_registry=registry)
    return app
