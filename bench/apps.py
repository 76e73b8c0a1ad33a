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

    if variant == "accesslog":
        return aiohttp_access_log_app()
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


def aiohttp_access_log_app() -> Any:
    """Requests recorded from aiohttp's access-logger call (evaluated, not shipped)."""
    import logging
    from bisect import bisect_left

    from aiohttp.abc import AbstractAccessLogger
    from promflux.exporter.aiohttp_adapter import _INSTRUMENTATION

    from promflux import exporter

    app = aiohttp_app("bare")
    exporter.instrument(app, service="bench", registry=CollectorRegistry())
    object.__delattr__(app, "_handle")  # no wrapped entry point: the logger records
    inst = app[_INSTRUMENTATION]
    cache, record, bounds = inst.cache, inst.record, inst.recorder.requests.bounds

    class MetricsAccessLogger(AbstractAccessLogger):
        @property
        def enabled(self) -> bool:
            return True

        def log(self, request: Any, response: Any, time: float) -> None:
            series = cache.get((request.match_info.route, request.method, response.status))
            if series is None:
                record(request, response.status, time)
            else:
                series[0] += time
                series[1 + bisect_left(bounds, time)] += 1

    make = app._make_handler

    def make_handler(**kwargs: Any) -> Any:
        kwargs["access_log_class"] = MetricsAccessLogger
        kwargs["access_log"] = logging.getLogger("aiohttp.access")
        return make(**kwargs)

    object.__setattr__(app, "_make_handler", make_handler)
    return app
