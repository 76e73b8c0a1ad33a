"""Pure-ASGI middleware for Starlette and FastAPI applications.

Per request it reads the clock twice, wraps ``send`` to see the status and the last body
message, and adds to a list; the route template comes from what routing left in the scope
(see ``routes``). /metrics is answered by the middleware itself, so it adds no route.

Placement: the outermost layer of every Starlette/FastAPI stack is ServerErrorMiddleware,
which already wraps ``send`` (with a coroutine per message) to know whether a response
started. When the stack has it, ``instrument`` puts our middleware in its place, doing its
job too (the same 500 response, the same re-raise), so a request pays for one send wrapper,
not two; see docs/performance.md. Otherwise the middleware wraps the whole stack.
"""

from __future__ import annotations

import functools
import inspect
from bisect import bisect_left
from time import perf_counter
from typing import Any

from . import client_timings
from .accumulator import add
from .core import Exporter, exception_name
from .metrics import KNOWN_METHODS, OTHER_METHOD
from .routes import RouteResolver

Scope = dict[str, Any]
_MAX_CACHE = 10_000  # (route, method, status) keys; beyond it, resolve every time
Message = dict[str, Any]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _is_async(handler: Any) -> bool:
    while isinstance(handler, functools.partial):
        handler = handler.func
    call = vars(type(handler)).get("__call__")  # a callable object's async __call__
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(call)


class PromfluxMiddleware:
    """ASGI middleware recording HTTP and WebSocket metrics into an ``Exporter``."""

    def __init__(self, app: Any, exporter: Exporter, resolver: RouteResolver,
                 errors: Any = None) -> None:
        self.app = app
        self._errors = errors  # the ServerErrorMiddleware we stand in for, if any
        self._exporter = exporter
        self._resolver = resolver
        self._skip = exporter.skip_paths
        self._metrics_path = exporter.metrics_path
        self._bounds = exporter.requests.bounds
        self._covered = False
        self._cache: dict[tuple[int, str, int], list[Any]] = {}
        self._pinned: list[Any] = []
        self.started = 0
        exporter.add_started_counter(lambda: self.started)

    def _cover(self) -> None:
        if not self._covered:
            self._covered = True
            try:
                self._exporter.cover(self._resolver.routes())
            except Exception as exc:
                self._exporter.internal_error("routes", exc)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self._not_http(scope, receive, send)
            return
        path = scope["path"]
        root_path = scope.get("root_path")
        if root_path and path.startswith(root_path):
            path = path[len(root_path):]
        if path in self._skip:
            await self._skipped(path, scope, receive, send)
            return

        # The hot path. Every line here is paid by every request: see docs/performance.md.
        self.started += 1
        start = perf_counter()
        status = 0  # 0: nothing sent yet; > 0: response started; < 0: recorded

        # A plain function returning send's awaitable: no extra coroutine per message.
        # The clock stops when the last body chunk is handed to the server, which writes
        # it out right away; background tasks that run after it are not latency.
        def send_wrapper(message: Message) -> Any:
            nonlocal status
            if not status:
                status = message.get("status", 0)  # http.response.start comes first
            elif status > 0 and not message.get("more_body"):
                elapsed = perf_counter() - start
                if "fastapi" in scope:  # an un-copied included router: keyed in _done
                    self._done(scope, root_path, status, elapsed)
                else:
                    try:  # the common case inline: this route, method and status seen before
                        series = self._cache[id(scope["route"]), scope["method"], status]
                        series[0] += elapsed
                        series[1 + bisect_left(self._bounds, elapsed)] += 1
                    except Exception:  # first time, or no route (404): the general path
                        self._done(scope, root_path, status, elapsed)
                status = -status
            return send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException as exc:
            if isinstance(exc, Exception):
                self._count_exception(scope, root_path, exc)
                if self._errors is not None:
                    # ServerErrorMiddleware's job, through our wrapper so that the status
                    # recorded is the one the client gets.
                    await self._error_response(scope, receive, send_wrapper, exc, status != 0)
            if status >= 0:  # nothing (complete) was sent
                status = status or (499 if type(exc).__name__ == "CancelledError" else 500)
                self._done(scope, root_path, status, perf_counter() - start)
            raise
        if status >= 0:
            # The app returned without finishing a response: the client went away.
            self._done(scope, root_path, 499, perf_counter() - start)

    def _count_exception(self, scope: Scope, root_path: str | None, exc: Exception) -> None:
        try:
            route = self._resolver.resolve(scope, root_path or "", 500)
            self._exporter.metrics.exceptions.labels(
                self._exporter.service, route, self._method(scope), exception_name(exc)).inc()
        except Exception as error:
            self._exporter.internal_error("exception", error)

    def _done(self, scope: Scope, root_path: str | None, status: int, elapsed: float) -> None:
        try:
            # Cache by the routed object's identity: no template work after the first hit.
            # (The hot path in __call__ repeats the common case inline.)
            route = scope.get("route") or scope.get("endpoint")
            if "fastapi" in scope:  # un-copied included routers: the context is per prefix
                route = scope["fastapi"].get("effective_route_context") or route
            series = self._cache.get((id(route), scope["method"], status))
            if series is None:
                series = self._miss(scope, root_path or "", route, status)
            add(series, self._bounds, elapsed)
        except Exception as error:
            self._exporter.internal_error("request", error)

    async def _error_response(self, scope: Scope, receive: Any, send: Any, exc: Exception,
                              response_started: bool) -> None:
        """What ServerErrorMiddleware does with an unhandled exception (it is re-raised)."""
        from starlette.concurrency import run_in_threadpool
        from starlette.requests import Request

        errors = self._errors
        request = Request(scope)
        if errors.debug:
            response = await run_in_threadpool(errors.debug_response, request, exc)
        elif errors.handler is None:
            response = errors.error_response(request, exc)
        elif _is_async(errors.handler):
            response = await errors.handler(request, exc)
        else:
            response = await run_in_threadpool(errors.handler, request, exc)
        if not response_started:
            await response(scope, receive, send)

    @staticmethod
    def _method(scope: Scope) -> str:
        method = scope["method"]
        return method if method in KNOWN_METHODS else OTHER_METHOD

    def _miss(self, scope: Scope, root_path: str, route: Any, status: int) -> list[Any]:
        # root_path is what our caller saw: routing below us appends mount prefixes.
        template = self._resolver.resolve(scope, root_path, status)
        method = self._method(scope)
        series = self._exporter.requests.series((template, method, status))
        if (route is not None and method == scope["method"]
                and self._resolver.cacheable(route) and len(self._cache) < _MAX_CACHE):
            self._pinned.append(route)  # keeps the id valid
            self._cache[(id(route), method, status)] = series
        return series

    async def _not_http(self, scope: Scope, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "websocket":
            await self._websocket(scope, receive, send)
            return
        if kind == "lifespan":
            self._cover()
            self._exporter.start_periodic_flush()
        await self.app(scope, receive, send)

    async def _skipped(self, path: str, scope: Scope, receive: Any, send: Any) -> None:
        if path == self._metrics_path:
            await self._serve_metrics(scope, send)
        elif path == self._exporter.client_timings_path:
            await self._client_timings(scope, receive, send)
        elif path == self._exporter.script_path:
            await self._reply(send, 200, client_timings.script(), [
                ("Content-Type", "text/javascript; charset=utf-8"),
                ("Cache-Control", "max-age=3600")], scope["method"] == "HEAD")
        else:
            await self.app(scope, receive, send)

    async def _client_timings(self, scope: Scope, receive: Any, send: Any) -> None:
        self._cover()  # the route templates a batch may name
        plain = [("Content-Type", "text/plain; charset=utf-8")]
        if scope["method"] != "POST":
            await self._reply(send, 405, b"405 Method Not Allowed\n", [*plain, ("Allow", "POST")])
            return
        body, limit = bytearray(), client_timings.MAX_BODY_BYTES
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            if len(body) > limit:
                status, text = 400, f"body over {limit} bytes\n".encode()
                break
            if not message.get("more_body"):
                status, text = self._exporter.client_timings(bytes(body))
                break
        await self._reply(send, status, text, plain if text else [])

    @staticmethod
    async def _reply(send: Any, status: int, body: bytes, headers: list[tuple[str, str]],
                     head: bool = False) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(k.lower().encode("latin-1"), v.encode("latin-1"))
                                for k, v in headers]})
        await send({"type": "http.response.body", "body": b"" if head else body})

    async def _serve_metrics(self, scope: Scope, send: Any) -> None:
        self._cover()
        if scope["method"] not in ("GET", "HEAD"):
            status, body, headers = 405, b"405 Method Not Allowed\n", [
                ("Content-Type", "text/plain; charset=utf-8"), ("Allow", "GET, HEAD")]
        else:
            status, body, headers = await self._exporter.scrape(
                _header(scope, b"accept"),
                _header(scope, b"accept-encoding"),
                _header(scope, b"authorization"),
            )
        await send({
            "type": "http.response.start",
            "status": status,
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        })
        await send({
            "type": "http.response.body",
            "body": b"" if scope["method"] == "HEAD" else body,
        })

    async def _websocket(self, scope: Scope, receive: Any, send: Any) -> None:
        exporter = self._exporter
        metrics = exporter.metrics
        root_path = scope.get("root_path", "")
        route = ""
        accepted_at = 0.0
        # Children are bound at accept; messages are counted live, not at close.
        received_child: Any = None
        sent_child: Any = None

        async def receive_wrapper() -> Message:
            message = await receive()
            if received_child is not None and message["type"] == "websocket.receive":
                received_child.inc()
            return message

        async def send_wrapper(message: Message) -> None:
            nonlocal route, accepted_at, received_child, sent_child
            await send(message)
            kind = message["type"]
            if kind == "websocket.send":
                if sent_child is not None:
                    sent_child.inc()
            elif kind == "websocket.accept" and not accepted_at:
                accepted_at = perf_counter()
                try:
                    route = self._resolver.resolve(scope, root_path, 101)
                    labels = (exporter.service, route)
                    metrics.websocket_opened.labels(*labels).inc()
                    metrics.websocket_active.labels(*labels).inc()
                    received_child = metrics.websocket_received.labels(*labels)
                    sent_child = metrics.websocket_sent.labels(*labels)
                except Exception as exc:
                    route = ""
                    exporter.internal_error("websocket", exc)

        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        finally:
            if route:
                try:
                    metrics.websocket_active.labels(exporter.service, route).dec()
                    metrics.websocket_duration.labels(exporter.service, route).observe(
                        perf_counter() - accepted_at)
                except Exception as exc:
                    exporter.internal_error("websocket", exc)


def instrument_starlette(app: Any, exporter: Exporter) -> None:
    """Make the middleware the outermost layer of a Starlette or FastAPI application."""
    if getattr(app, "middleware_stack", None) is not None:
        raise RuntimeError("instrument() must be called before the application starts")
    resolver = RouteResolver(app)
    build = app.build_middleware_stack

    def build_middleware_stack() -> Any:
        stack = build()
        from starlette.middleware.errors import ServerErrorMiddleware

        if type(stack) is ServerErrorMiddleware and hasattr(stack, "handler"):
            return PromfluxMiddleware(stack.app, exporter, resolver, errors=stack)
        return PromfluxMiddleware(stack, exporter, resolver)

    # Starlette builds the stack on the first call; an instance attribute wraps that build.
    app.build_middleware_stack = build_middleware_stack
