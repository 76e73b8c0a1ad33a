"""The no-op services measured by the overhead benchmarks, one per variant."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Histogram

FASTAPI_VARIANTS = (
    "bare", "passthrough", "promflux", "handwritten", "instrumentator", "starlette_exporter",
)
AIOHTTP_VARIANTS = ("bare", "passthrough", "promflux")


class PassThroughMiddleware:
    """A middleware that does nothing: the floor any ASGI middleware pays."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


class HandwrittenHistogramMiddleware:
    """The simplest useful pure-ASGI histogram middleware, for reference."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.histogram = Histogram("hw_seconds", "latency", ["route", "method", "status"],
                                   registry=CollectorRegistry())

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from time import perf_counter

        start = perf_counter()
        status = 500

        async def wrapped(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, wrapped)
        finally:
            route = scope.get("route")
            self.histogram.labels(getattr(route, "path", "none"), scope["method"],
                                  status).observe(perf_counter() - start)


def fastapi_app(variant: str) -> Any:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/noop")
    async def noop() -> dict[str, str]:
        return {}

    if variant == "promflux":
        from promflux import exporter

        exporter.instrument(app, service="bench", registry=CollectorRegistry())
    elif variant == "passthrough":
        app.add_middleware(PassThroughMiddleware)
    elif variant == "handwritten":
        app.add_middleware(HandwrittenHistogramMiddleware)
    elif variant == "instrumentator":
        from prometheus_fastapi_instrumentator import Instrumentator

        Instrumentator(registry=CollectorRegistry()).instrument(app)
    elif variant == "starlette_exporter":
        from starlette_exporter import PrometheusMiddleware

        app.add_middleware(PrometheusMiddleware)
    elif variant != "bare":
        raise SystemExit(f"unknown variant {variant}")
    return app


def aiohttp_app(variant: str) -> Any:
    from aiohttp import web

    async def noop(request: web.Request) -> web.Response:
        return web.json_response({})

    @web.middleware
    async def passthrough(request: web.Request, handler: Any) -> web.StreamResponse:
        return await handler(request)

    if variant == "entrypoint":
        return aiohttp_entry_point_app()
    app = web.Application()
    app.router.add_get("/noop", noop)
    if variant == "passthrough":
        app.middlewares.append(passthrough)
    elif variant == "promflux":
        from promflux import exporter

        exporter.instrument(app, service="bench", registry=CollectorRegistry())
    elif variant != "bare":
        raise SystemExit(f"unknown variant {variant}")
    return app



def aiohttp_entry_point_app() -> Any:
    """promflux as it was before the access-logger hook: the entry point wrapped."""
    from promflux.exporter import aiohttp_access

    install = aiohttp_access.install
    aiohttp_access.install = lambda app, inst: False  # type: ignore[assignment]
    try:
        return aiohttp_app("promflux")
    finally:
        aiohttp_access.install = install
