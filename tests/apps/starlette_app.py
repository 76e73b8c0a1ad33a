"""Plain Starlette apps: a custom 500 handler, and a stack that is not the usual shape."""

import os

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Mount, Route

from promflux import exporter


class ThermostatError(Exception):
    pass


async def temperature(request):
    return JSONResponse({"room": request.path_params["room"], "celsius": 21.5})


async def fail(request):
    raise ThermostatError("no reading")


async def health(request):
    return PlainTextResponse("ok")


async def failing_health(request):
    raise ThermostatError("sensor bus down")


async def on_error(request, exc):
    return JSONResponse({"error": type(exc).__name__}, status_code=503)


class Tagging:
    """A user middleware, to check that it sits inside the timing."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        await self.app(scope, receive, send)


routes = [
    Route("/rooms/{room}/temperature", temperature),
    Route("/fail", fail),
    Route("/health", health),
    Route("/healthz", failing_health),  # excluded from metrics, still the app's errors
    Mount("/zones/{zone}", routes=[Route("/rooms/{room}", temperature)]),
]


class WrappedStarlette(Starlette):
    """Something else already wraps the stack: the exporter must fall back to wrapping it."""

    def build_middleware_stack(self):
        return Tagging(super().build_middleware_stack())


kind = os.environ.get("STARLETTE_KIND", "plain")
cls = WrappedStarlette if kind == "wrapped" else Starlette
app = cls(routes=routes, middleware=[Middleware(Tagging)],
          exception_handlers={Exception: on_error} if kind != "default-errors" else {})
_buckets = os.environ.get("BUCKETS")
metrics = exporter.instrument(
    app, service="thermostat",
    registry=None if os.environ.get("PRIVATE_REGISTRY") else exporter.REGISTRY,
    buckets=[float(b) for b in _buckets.split(",")] if _buckets else exporter.LATENCY_BUCKETS)
