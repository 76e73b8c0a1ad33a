"""aiohttp request timing, /metrics handler and WebSocket hooks.

The route label is the canonical path of the resource aiohttp already matched (sub-app
prefixes included). The timing wrapper sends the response itself (``prepare`` and
``write_eof`` are what aiohttp calls next anyway, and both are idempotent) so that latency
ends when the last byte is out.
"""

from __future__ import annotations

import asyncio
import inspect
from bisect import bisect_left
from time import perf_counter
from typing import Any

from aiohttp import web

from . import client_timings
from .accumulator import add
from .core import Exporter, exception_name
from .metrics import KNOWN_METHODS, OTHER_METHOD, UNMATCHED, RouteInfo

_WEBSOCKET_HOOK = web.AppKey("promflux.websocket_opened", object) if hasattr(
    web, "AppKey") else "promflux.websocket_opened"


def _hook_websocket_prepare() -> None:
    """Learn of every WebSocket as it opens, with no cost to plain HTTP responses.

    A response-prepare signal receiver would be awaited for every response (about 2 % of
    a no-op request, docs/performance.md); WebSocket opens are rare, so the hook sits on
    ``WebSocketResponse.prepare`` instead, once per process. Applications that were not
    instrumented have no hook in their config and are left alone.
    """
    cls = web.WebSocketResponse
    if getattr(cls.prepare, "_promflux", False):
        return
    original = cls.prepare

    async def prepare(self: web.WebSocketResponse, request: web.BaseRequest) -> Any:
        if self.prepared:  # aiohttp calls prepare again after the handler: not a new socket
            return await original(self, request)
        writer = await original(self, request)
        try:
            hook = request.config_dict.get(_WEBSOCKET_HOOK)  # type: ignore[attr-defined]
        except Exception:
            hook = None
        if hook is not None:
            hook(request, self)
        return writer

    prepare._promflux = True  # type: ignore[attr-defined]
    cls.prepare = prepare  # type: ignore[method-assign]


def _route_of(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return UNMATCHED if resource is None else resource.canonical


def _covered_routes(app: web.Application) -> list[RouteInfo]:
    by_template: dict[str, set[str]] = {}
    for route in app.router.routes():
        resource = route.resource
        if resource is None or route.method == "*":
            continue
        by_template.setdefault(resource.canonical, set()).add(route.method)
    return [RouteInfo(t, frozenset(m)) for t, m in by_template.items()]


def _instrument_websocket(exporter: Exporter, request: web.Request, ws: Any) -> None:
    """Count a WebSocket's messages by wrapping this one response's methods."""
    metrics = exporter.metrics
    labels = (exporter.service, _route_of(request))
    received = metrics.websocket_received.labels(*labels)
    sent = metrics.websocket_sent.labels(*labels)
    data_types = {"TEXT", "BINARY"}
    original_receive, send_str, send_bytes = ws.receive, ws.send_str, ws.send_bytes

    async def receive(*args: Any, **kwargs: Any) -> Any:
        message = await original_receive(*args, **kwargs)
        if message.type.name in data_types:
            received.inc()
        return message

    async def send_str_counted(*args: Any, **kwargs: Any) -> None:
        await send_str(*args, **kwargs)
        sent.inc()

    async def send_bytes_counted(*args: Any, **kwargs: Any) -> None:
        await send_bytes(*args, **kwargs)
        sent.inc()

    # send_json goes through send_str, receive_* through receive: each message counts once.
    ws.receive, ws.send_str, ws.send_bytes = receive, send_str_counted, send_bytes_counted


def instrument_aiohttp(app: web.Application, exporter: Exporter,
                       use_middleware: bool = False) -> None:
    """Time every request, serve /metrics and hook WebSockets on an aiohttp application.

    Requests are timed around the application's request entry point, so other
    middlewares, 404s and 405s are inside the measurement; ``use_middleware`` (or an
    aiohttp without that entry point) uses an outermost middleware instead.
    """
    skip = exporter.skip_paths
    metrics = exporter.metrics
    requests = exporter.requests
    bounds = requests.bounds
    started = [0]  # requests started; in progress = started - recorded
    exporter.add_started_counter(lambda: started[0])
    # (route object, raw method, status) -> the accumulator's series list. aiohttp's routes
    # hash by identity; the per-request SystemRoute of a 404/405 is never cached.
    cache: dict[tuple[Any, str, int], list[Any]] = {}
    websockets: dict[int, tuple[tuple[str, str], float]] = {}  # id(request) -> labels, start

    def record(request: web.Request, status: int, elapsed: float) -> None:
        try:
            route = request.match_info.route
            method = request.method
            series = cache.get((route, method, status))
            if series is None:
                normalized = method if method in KNOWN_METHODS else OTHER_METHOD
                series = requests.series((_route_of(request), normalized, status))
                if route.resource is not None and normalized == method and len(cache) < 10_000:
                    cache[route, method, status] = series
            add(series, bounds, elapsed)
        except Exception as error:
            exporter.internal_error("request", error)

    def count_exception(request: web.Request, exc: BaseException) -> None:
        try:
            method = request.method
            metrics.exceptions.labels(
                exporter.service, _route_of(request),
                method if method in KNOWN_METHODS else OTHER_METHOD, exception_name(exc)).inc()
        except Exception as error:
            exporter.internal_error("exception", error)

    def websocket_closed(request: web.Request) -> bool:
        state = websockets.pop(id(request), None)
        if state is None:
            return False
        labels, opened_at = state
        try:
            metrics.websocket_active.labels(*labels).dec()
            metrics.websocket_duration.labels(*labels).observe(perf_counter() - opened_at)
        except Exception as exc:
            exporter.internal_error("websocket", exc)
        return True

    def timed(handler: Any) -> Any:
        async def promflux_handle(request: web.Request) -> web.StreamResponse:
            if request.path in skip:
                return await handler(request)
            started[0] += 1
            start = perf_counter()
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                if not websocket_closed(request):
                    record(request, exc.status, perf_counter() - start)
                raise
            except asyncio.CancelledError:
                if not websocket_closed(request):
                    record(request, 499, perf_counter() - start)
                raise
            except Exception as exc:
                count_exception(request, exc)
                if not websocket_closed(request):
                    record(request, 500, perf_counter() - start)
                raise
            if isinstance(response, web.WebSocketResponse):
                websocket_closed(request)  # the handler returns when the socket is done
                return response  # measured as a connection, not as request latency
            # Send it now so that latency ends when the response is out.
            try:
                await response.prepare(request)
                await response.write_eof()
            except ConnectionError:
                record(request, 499, perf_counter() - start)
                return response
            elapsed = perf_counter() - start
            # The common case inline (a known route, method and status); else record().
            series = cache.get((request.match_info.route, request.method, response.status))
            if series is None:
                record(request, response.status, elapsed)
            else:
                series[0] += elapsed
                series[1 + bisect_left(bounds, elapsed)] += 1
            return response

        return promflux_handle

    async def metrics_handler(request: web.Request) -> web.Response:
        status, body, headers = await exporter.scrape(
            request.headers.get("Accept"),
            request.headers.get("Accept-Encoding"),
            request.headers.get("Authorization"),
        )
        response = web.Response(status=status, body=body)
        for key, value in headers:
            if key != "Content-Length":
                response.headers[key] = value
        return response

    def websocket_opened(request: web.Request, response: web.WebSocketResponse) -> None:
        if id(request) in websockets:
            return
        try:
            labels = (exporter.service, _route_of(request))
            metrics.websocket_opened.labels(*labels).inc()
            metrics.websocket_active.labels(*labels).inc()
            _instrument_websocket(exporter, request, response)
            websockets[id(request)] = (labels, perf_counter())
            started[0] -= 1  # a connection from now on, not a request in flight
        except Exception as exc:
            exporter.internal_error("websocket", exc)

    async def on_startup(_: web.Application) -> None:
        try:
            exporter.cover(_covered_routes(app))
        except Exception as exc:
            exporter.internal_error("routes", exc)
        exporter.start_periodic_flush()

    async def on_cleanup(_: web.Application) -> None:
        exporter.stop_periodic_flush()

    handle = getattr(app, "_handle", None)
    if use_middleware or not inspect.iscoroutinefunction(handle):
        @web.middleware
        async def promflux_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
            return await timed(handler)(request)

        app.middlewares.insert(0, promflux_middleware)  # outermost: sees every other's work
    else:
        # The application's request entry point (what aiohttp's server calls for every
        # request): wrapping it costs one coroutine, where any middleware makes aiohttp
        # build and call its middleware chain (docs/performance.md).
        object.__setattr__(app, "_handle", timed(handle))
    async def client_timings_handler(request: web.Request) -> web.Response:
        if request.content_length is not None and (
                request.content_length > client_timings.MAX_BODY_BYTES):
            return web.Response(status=400, text=f"body over {client_timings.MAX_BODY_BYTES}"
                                                 " bytes\n")
        body = bytearray()
        while len(body) <= client_timings.MAX_BODY_BYTES:
            chunk = await request.content.read(65536)
            if not chunk:
                break
            body += chunk
        status, text = exporter.client_timings(bytes(body))
        return web.Response(status=status, body=text or None,
                            content_type="text/plain" if text else None)

    async def script_handler(request: web.Request) -> web.Response:
        return web.Response(body=client_timings.script(), content_type="text/javascript",
                            charset="utf-8", headers={"Cache-Control": "max-age=3600"})

    app.router.add_get(exporter.metrics_path, metrics_handler)
    app.router.add_post(exporter.client_timings_path, client_timings_handler)
    app.router.add_get(exporter.script_path, script_handler)
    app[_WEBSOCKET_HOOK] = websocket_opened
    _hook_websocket_prepare()
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
