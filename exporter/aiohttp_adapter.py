"""aiohttp request timing, /metrics handler and WebSocket hooks.

The route label is the canonical path of the resource aiohttp already matched (sub-app
prefixes included). Requests are recorded from the access-logger call aiohttp makes after
every response (``aiohttp_access``). Where that cannot be used (a server that cancels
handlers, an aiohttp without the entry point), a wrapper around the application's entry
point times them instead. It sends the response itself (``prepare`` and ``write_eof`` are
what aiohttp calls next anyway, and both are idempotent), so that latency ends when the
last byte is out, as the access logger's does. Sub-apps use a middleware.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import Any

from aiohttp import web

from promflux.labels import UNMATCHED, normalize_method

from . import aiohttp_access, browser_timings
from .accumulator import FOLD_AT
from .compat import aiohttp as hooks
from .metrics import RouteInfo
from .recorder import Recorder, exception_name
from .ws_messages import closed, current_route

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

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
    cls.prepare = prepare  # type: ignore[method-assign, assignment]


_INSTRUMENTATION = aiohttp_access.INSTRUMENTATION


def _on_add_subapp(resource_factory: Any, subapp: web.Application) -> None:
    """An instrumented application added as a sub-app: aiohttp never calls a sub-app's
    request entry point (the root's serves it), so time it with a middleware instead,
    inserted just before ``add_subapp`` freezes it. Other applications are left alone."""
    instrumentation = subapp.get(_INSTRUMENTATION)
    if isinstance(instrumentation, AiohttpInstrumentation) and not subapp.frozen:
        # add_subapp passes its prefix first; add_domain a domain rule (no prefix).
        args = getattr(resource_factory, "args", ())
        prefix = args[0] if args and isinstance(args[0], str) else ""
        instrumentation.use_middleware(subapp, prefix.rstrip("/"))


def _route_of(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return UNMATCHED if resource is None else resource.canonical


def _opens_websocket(handler: Any) -> bool:
    """Whether a handler makes a ``WebSocketResponse`` itself (the usual way to write a
    WebSocket route in aiohttp). Others are found when their first connection opens."""
    code = getattr(inspect.unwrap(handler), "__code__", None)
    return code is not None and "WebSocketResponse" in code.co_names


def _covered_routes(app: web.Application) -> list[RouteInfo]:
    by_template: dict[str, set[str]] = {}
    websockets: set[str] = set()
    for route in app.router.routes():
        resource = route.resource
        if resource is None or route.method == "*":
            continue
        by_template.setdefault(resource.canonical, set()).add(route.method)
        if route.method == "GET" and _opens_websocket(route.handler):
            websockets.add(resource.canonical)
    return [RouteInfo(t, frozenset(m), websocket=t in websockets)
            for t, m in by_template.items()]


def _count_messages(recorder: Recorder, request: web.Request, ws: Any) -> list[int]:
    """Count a WebSocket's messages by wrapping this one response's methods; returns a
    holder that gets the first close code seen, from either side (aiohttp's own
    ``close_code`` is the peer's answer, not the code the server closed with)."""
    first_close: list[int] = []
    metrics = recorder.metrics
    labels = (recorder.service, _route_of(request))
    received = metrics.websocket_received.labels(*labels)
    sent = metrics.websocket_sent.labels(*labels)
    data_types = {"TEXT", "BINARY"}
    original_receive, send_str, send_bytes = ws.receive, ws.send_str, ws.send_bytes

    original_close = ws.close

    async def receive(*args: Any, **kwargs: Any) -> Any:
        message = await original_receive(*args, **kwargs)
        name = message.type.name
        if name in data_types:
            received.inc()
        elif name == "CLOSE" and not first_close:  # the client closed
            first_close.append(int(message.data))
        return message

    async def close(*args: Any, code: int = 1000, **kwargs: Any) -> bool:
        if not first_close:  # the server closed
            first_close.append(int(code))
        result: bool = await original_close(*args, code=code, **kwargs)
        return result

    async def send_str_counted(*args: Any, **kwargs: Any) -> None:
        await send_str(*args, **kwargs)
        sent.inc()

    async def send_bytes_counted(*args: Any, **kwargs: Any) -> None:
        await send_bytes(*args, **kwargs)
        sent.inc()

    # send_json goes through send_str, receive_* through receive: each message counts once.
    ws.receive, ws.send_str, ws.send_bytes = receive, send_str_counted, send_bytes_counted
    ws.close = close
    return first_close


def _fast_path(inst: AiohttpInstrumentation, app: web.Application) -> bool:
    """Record from the access logger, else wrap the application's request entry point
    (what aiohttp's server calls for every request): one coroutine, where any middleware
    makes aiohttp build and call its middleware chain (docs/performance.md). False when
    neither fits this aiohttp."""
    if aiohttp_access.install(app, inst):
        return True
    handle = hooks.entry_point(app)
    if handle is None:
        return False
    hooks.replace_entry_point(app, inst.timed(handle))
    return True


class AiohttpInstrumentation:
    """Times every request, serves /metrics and the browser-timing endpoints, and follows
    WebSockets on one aiohttp application.

    Requests are timed around the application's request entry point, so other
    middlewares, 404s and 405s are inside the measurement; ``use_middleware`` (or an
    aiohttp without that entry point) uses an outermost middleware instead.
    """

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        # Requests started: aiohttp's own count on the servers recording from the access
        # logger, plus this (the wrapped entry point's count, less what is never recorded).
        # In progress = started - recorded.
        self.started = [0]
        self.servers: list[Any] = []
        recorder.add_started_counter(
            lambda: self.started[0] + sum(s.requests_count for s in self.servers))
        # id(request) -> (status, exception), from handle_error for the access logger
        self.errors: dict[int, tuple[int, BaseException | None]] = {}
        # route object -> status -> the accumulator's series list, for routes of one
        # method (a request it matched has that method). aiohttp's routes hash by identity
        # (two plain lookups cost less than making and hashing a (route, status) key); the
        # per-request SystemRoute of a 404/405 is never cached.
        self.cache: dict[Any, dict[int, list[float]]] = {}
        self._cached = 0  # series in the cache
        # id(request) -> route, opening time, the first close code seen
        self.websockets: dict[int, tuple[str, float, list[int]]] = {}
        self._middleware = False
        self.websocket_routes: set[str] = set()
        self.own_handlers: set[Any] = set()  # the exporter's endpoints on the app

    def use_middleware(self, app: web.Application, prefix: str = "") -> None:
        """Time requests with an outermost middleware (sub-apps, or no entry point).
        A sub-app's paths arrive with its ``prefix``: skip /metrics there too."""
        if prefix:
            skip = self.recorder.skip_paths
            self.recorder.skip_paths = skip | {prefix + path for path in skip}
        if self._middleware:
            return
        self._middleware = True
        timed, own = self.timed, self.own_handlers

        @web.middleware
        async def promflux_middleware(request: web.Request,
                                      handler: Handler) -> web.StreamResponse:
            if request.match_info.handler in own:  # /metrics, under a sub-app's prefix too
                return await handler(request)
            return await timed(handler)(request)

        app.middlewares.insert(0, promflux_middleware)  # outermost: sees all the others

    def install(self, app: web.Application, use_middleware: bool = False) -> None:
        recorder = self.recorder
        app[_INSTRUMENTATION] = self
        # Without the sub-app hook, any instrumented application may become a sub-app:
        # the middleware then times each one, root or not.
        if (use_middleware or not hooks.hook_add_subapp(_on_add_subapp)
                or not _fast_path(self, app)):
            self.use_middleware(app)
        AiohttpEndpoints(recorder, self).add_to(app)
        app[_WEBSOCKET_HOOK] = self.websocket_opened
        _hook_websocket_prepare()
        app.on_startup.append(self.on_startup)
        app.on_cleanup.append(self.on_cleanup)

    # -- recording -----------------------------------------------------------------------

    def record(self, request: web.Request, status: int, elapsed: float) -> None:
        """Add one request (the general path; ``timed`` inlines the cached case)."""
        requests = self.recorder.requests
        try:
            route = request.match_info.route
            method = request.method
            statuses = self.cache.get(route) if route.method == method else None
            series = None if statuses is None else statuses.get(status)
            if series is None:
                normalized = normalize_method(method)
                series = requests.series((_route_of(request), normalized, status))
                # (A 500 may stand for a client gone or a WebSocket's error: never cached.)
                if (route.resource is not None and route.method == normalized == method
                        and status != 500 and self._cached < 10_000):
                    self.cache.setdefault(route, {})[status] = series
                    self._cached += 1
            requests.add(series, elapsed)
        except Exception as error:
            self.recorder.internal_error("request", error)

    def count_exception(self, request: web.Request, exc: BaseException) -> None:
        recorder = self.recorder
        try:
            recorder.metrics.exceptions.labels(
                recorder.service, _route_of(request), normalize_method(request.method),
                exception_name(exc)).inc()
        except Exception as error:
            recorder.internal_error("exception", error)

    def websocket_opened(self, request: web.Request, response: web.WebSocketResponse) -> None:
        if id(request) in self.websockets:
            return
        recorder = self.recorder
        try:
            route = _route_of(request)
            labels = (recorder.service, route)
            recorder.metrics.websocket_opened.labels(*labels).inc()
            recorder.metrics.websocket_active.labels(*labels).inc()
            first_close = _count_messages(recorder, request, response)
            self.websockets[id(request)] = (route, perf_counter(), first_close)
            self.started[0] -= 1  # a connection from now on, not a request in flight
            current_route.set(route)  # for metrics.message() in this handler
            if route not in self.websocket_routes:  # not an HTTP endpoint after all
                self.websocket_routes.add(route)
                recorder.requests.forget(lambda key: key[0] == route)  # type: ignore[index]
        except Exception as exc:
            recorder.internal_error("websocket", exc)

    def websocket_closed(self, request: web.Request, error: BaseException | None = None) -> bool:
        """Record the end of the request's WebSocket; False when it had none."""
        state = self.websockets.pop(id(request), None)
        if state is None:
            return False
        route, opened_at, first_close = state
        # No close seen: the server's 1011 after an error, else an abnormal closure.
        code = first_close[0] if first_close else (1011 if error is not None else 1006)
        closed(self.recorder, route, perf_counter() - opened_at, code, error)
        return True

    def timed(self, handler: Handler) -> Handler:
        """``handler`` wrapped to time each request (the per-request hot path)."""
        skip = self.recorder.skip_paths
        fold = self.recorder.requests.fold
        started, cache, record = self.started, self.cache, self.record
        websocket_closed, count_exception = self.websocket_closed, self.count_exception

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
                transport = request.transport
                if isinstance(exc, ConnectionResetError) and (
                        transport is None or transport.is_closing()):
                    # The client went away (while its body was read): a 499, as on ASGI,
                    # and not the application's exception.
                    if not websocket_closed(request):
                        record(request, 499, perf_counter() - start)
                    raise
                count_exception(request, exc)
                if not websocket_closed(request, exc):
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
            statuses = cache.get(request.match_info.route)
            series = None if statuses is None else statuses.get(response.status)
            if series is None:
                record(request, response.status, elapsed)
            else:
                series.append(elapsed)  # bucketed in batches: see accumulator
                if len(series) >= FOLD_AT:
                    fold(series)
            return response

        return promflux_handle

    # -- lifecycle -----------------------------------------------------------------------

    async def on_startup(self, app: web.Application) -> None:
        try:
            self.recorder.cover(_covered_routes(app))
        except Exception as exc:
            self.recorder.internal_error("routes", exc)
        self.recorder.start_periodic_flush()

    async def on_cleanup(self, app: web.Application) -> None:
        self.recorder.stop_periodic_flush()


class AiohttpEndpoints:
    """The exporter's own routes on an aiohttp application: /metrics, the browser-timings
    beacon and the script."""

    def __init__(self, recorder: Recorder, instrumentation: AiohttpInstrumentation) -> None:
        self.recorder = recorder
        self.instrumentation = instrumentation

    def add_to(self, app: web.Application) -> None:
        recorder = self.recorder
        self.instrumentation.own_handlers.update((
            self.metrics_handler, self.client_timings_handler, self.preflight_handler,
            self.script_handler))
        app.router.add_get(recorder.metrics_path, self.metrics_handler)
        app.router.add_post(recorder.client_timings_path, self.client_timings_handler)
        app.router.add_route("OPTIONS", recorder.client_timings_path, self.preflight_handler)
        app.router.add_get(recorder.script_path, self.script_handler)

    async def metrics_handler(self, request: web.Request) -> web.Response:
        # A server recording from its access logger counted this scrape as a request
        # started: it is not one in progress.
        itself = self.instrumentation if self.instrumentation.servers else None
        if itself is not None:
            itself.started[0] -= 1
        try:
            status, body, headers = await self.recorder.scrape(
                request.headers.get("Accept"),
                request.headers.get("Accept-Encoding"),
                request.headers.get("Authorization"),
            )
        finally:
            if itself is not None:
                itself.started[0] += 1
        response = web.Response(status=status, body=body)
        for key, value in headers:
            if key != "Content-Length":
                response.headers[key] = value
        return response

    async def client_timings_handler(self, request: web.Request) -> web.Response:
        limit = browser_timings.MAX_BODY_BYTES
        if request.content_length is not None and request.content_length > limit:
            return web.Response(status=400, text=f"body over {limit} bytes\n")
        body = bytearray()
        while len(body) <= limit:
            chunk = await request.content.read(65536)
            if not chunk:
                break
            body += chunk
        origin = request.headers.get("Origin")
        status, text = self.recorder.client_timings(bytes(body), origin,
                                                    request.headers.get("Authorization"))
        allowed = browser_timings.cors(origin, self.recorder.browser_origins) or []
        return web.Response(status=status, body=text or None, headers=dict(allowed),
                            content_type="text/plain" if text else None)

    async def preflight_handler(self, request: web.Request) -> web.Response:
        """A CORS preflight for the beacon: allowed for ``browser_origins`` only."""
        headers = browser_timings.cors(request.headers.get("Origin"),
                                      self.recorder.browser_origins, True,
                                      self.recorder.browser_auth)
        if not headers:
            return web.Response(status=403, text="403 Forbidden: origin not allowed\n")
        return web.Response(status=204, headers=dict(headers))

    async def script_handler(self, request: web.Request) -> web.Response:
        return web.Response(body=browser_timings.script(), content_type="text/javascript",
                            charset="utf-8", headers={"Cache-Control": "max-age=3600"})


def instrument_aiohttp(app: web.Application, recorder: Recorder,
                       use_middleware: bool = False) -> AiohttpInstrumentation:
    """Instrument ``app`` (see ``AiohttpInstrumentation``)."""
    instrumentation = AiohttpInstrumentation(recorder)
    instrumentation.install(app, use_middleware)
    return instrumentation
