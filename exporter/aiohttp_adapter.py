"""aiohttp middleware, /metrics handler and WebSocket hooks.

The route label is the canonical path of the resource aiohttp already matched (sub-app
prefixes included). The middleware sends the response itself (``prepare`` and
``write_eof`` are what aiohttp calls next anyway, and both are idempotent) so that latency
ends when the last byte is out.
"""

from __future__ import annotations

import asyncio
from time import perf_counter
from typing import Any

from aiohttp import web

from .core import Exporter, exception_name
from .metrics import KNOWN_METHODS, OTHER_METHOD, UNMATCHED, RouteInfo

_WS_KEY = "promflux.websocket"


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


def instrument_aiohttp(app: web.Application, exporter: Exporter) -> None:
    """Add the middleware, /metrics route and WebSocket hooks to an aiohttp application."""
    skip = exporter.skip_paths
    metrics = exporter.metrics
    observe = exporter.requests.observe
    started = [0]  # requests started; in progress = started - recorded
    exporter.add_started_counter(lambda: started[0])

    def record(route: str, method: str, status: int, elapsed: float,
               exc: BaseException | None = None) -> None:
        try:
            observe((route, method, status), elapsed)
            if exc is not None:
                metrics.exceptions.labels(exporter.service, route, method,
                                          exception_name(exc)).inc()
        except Exception as error:
            exporter.internal_error("request", error)

    def websocket_closed(request: web.Request) -> None:
        labels, started = request[_WS_KEY]
        try:
            metrics.websocket_active.labels(*labels).dec()
            metrics.websocket_duration.labels(*labels).observe(perf_counter() - started)
        except Exception as exc:
            exporter.internal_error("websocket", exc)

    @web.middleware
    async def promflux_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path in skip:
            return await handler(request)
        method = request.method
        if method not in KNOWN_METHODS:
            method = OTHER_METHOD
        started[0] += 1
        start = perf_counter()
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            record(_route_of(request), method, exc.status, perf_counter() - start)
            raise
        except asyncio.CancelledError:
            record(_route_of(request), method, 499, perf_counter() - start)
            raise
        except Exception as exc:
            if _WS_KEY not in request:
                record(_route_of(request), method, 500, perf_counter() - start, exc)
            raise
        finally:
            if _WS_KEY in request:
                websocket_closed(request)  # the handler returns when the socket is done
        if isinstance(response, web.WebSocketResponse):
            return response  # measured as a connection, not as request latency
        try:
            await response.prepare(request)
            await response.write_eof()
        except ConnectionError:
            record(_route_of(request), method, 499, perf_counter() - start)
            return response
        record(_route_of(request), method, response.status, perf_counter() - start)
        return response

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

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        if not isinstance(response, web.WebSocketResponse) or _WS_KEY in request:
            return
        try:
            labels = (exporter.service, _route_of(request))
            metrics.websocket_opened.labels(*labels).inc()
            metrics.websocket_active.labels(*labels).inc()
            _instrument_websocket(exporter, request, response)
            request[_WS_KEY] = (labels, perf_counter())
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

    app.middlewares.insert(0, promflux_middleware)  # outermost: sees every other's work
    app.router.add_get(exporter.metrics_path, metrics_handler)
    app.on_response_prepare.append(on_prepare)
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
