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
from time import perf_counter
from typing import Any

from promflux.labels import normalize_method

from .accumulator import FOLD_AT
from .asgi_websocket import WebSocketRecorder
from .compat import starlette as hooks
from .compat.starlette import route_context
from .endpoints import MetricsEndpoints
from .recorder import Recorder, exception_name
from .routes import RouteResolver

Scope = dict[str, Any]
_CLIENT_GONE = frozenset({"CancelledError", "ClientDisconnect"})
_MAX_CACHE = 10_000  # (route, method, status) keys; beyond it, resolve every time
Message = dict[str, Any]


def _is_async(handler: Any) -> bool:
    while isinstance(handler, functools.partial):
        handler = handler.func
    call = vars(type(handler)).get("__call__")  # a callable object's async __call__
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(call)


class PromfluxMiddleware:
    """ASGI middleware recording HTTP and WebSocket metrics into a ``Recorder``."""

    def __init__(self, app: Any, recorder: Recorder, resolver: RouteResolver,
                 errors: Any = None) -> None:
        self.app = app
        self._errors = errors  # the ServerErrorMiddleware we stand in for, if any
        self._recorder = recorder
        self._resolver = resolver
        self._skip = recorder.skip_paths
        self._metrics_path = recorder.metrics_path
        self._requests = recorder.requests
        self._fold = recorder.requests.fold
        self._covered = False
        self._cache: dict[tuple[int, str, int], list[Any]] = {}
        self._pinned: list[Any] = []
        self.started = 0
        recorder.add_started_counter(lambda: self.started)
        # Excluded paths are not timed but still go through the application's own error
        # handling (the ServerErrorMiddleware we stand in for, when there is one).
        self._endpoints = MetricsEndpoints(errors if errors is not None else app, recorder,
                                           self._cover)
        self._websockets = WebSocketRecorder(app, recorder, resolver)

    def _cover(self) -> None:
        if not self._covered:
            self._covered = True
            try:
                self._recorder.cover(self._resolver.routes())
            except Exception as exc:
                self._recorder.internal_error("routes", exc)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self._not_http(scope, receive, send)
            return
        path = scope["path"]
        root_path = scope.get("root_path")
        if root_path and path.startswith(root_path):
            path = path[len(root_path):]
        if path in self._skip:
            await self._endpoints(path, scope, receive, send)
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
                route = scope.get("route")
                if "fastapi" in scope or (route is None and "endpoint" in scope):
                    # An un-copied included router, or older Starlette (only the
                    # endpoint): keyed in _done, without an exception.
                    self._done(scope, root_path, status, elapsed)
                else:
                    # The common case inline: this route (None: nothing matched, a 404),
                    # method and status seen before.
                    try:
                        series = self._cache[id(route), scope["method"], status]
                    except Exception:  # first time: the general path
                        self._done(scope, root_path, status, elapsed)
                    else:
                        series.append(elapsed)  # bucketed in batches: see accumulator
                        if len(series) >= FOLD_AT:
                            self._fold(series)
                status = -status
            return send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException as exc:
            # The client went away (cancelled, or gone while its body was read): a 499, as
            # on aiohttp, and not the application's exception.
            gone = type(exc).__name__ in _CLIENT_GONE
            if isinstance(exc, Exception) and not gone:
                self._count_exception(scope, root_path, exc)
                if self._errors is not None:
                    # ServerErrorMiddleware's job, through our wrapper so that the status
                    # recorded is the one the client gets.
                    await self._error_response(scope, receive, send_wrapper, exc, status != 0)
            if status >= 0:  # nothing (complete) was sent
                status = 499 if gone else (status or 500)
                self._done(scope, root_path, status, perf_counter() - start)
            raise
        if status >= 0:
            # The app returned without finishing a response: the client went away.
            self._done(scope, root_path, 499, perf_counter() - start)

    def _count_exception(self, scope: Scope, root_path: str | None, exc: Exception) -> None:
        try:
            route = self._resolver.resolve(scope, root_path or "", 500)
            self._recorder.metrics.exceptions.labels(
                self._recorder.service, route, normalize_method(scope["method"]),
                exception_name(exc)).inc()
        except Exception as error:
            self._recorder.internal_error("exception", error)

    def _done(self, scope: Scope, root_path: str | None, status: int, elapsed: float) -> None:
        try:
            # Cache by the routed object's identity: no template work after the first hit.
            # (The hot path in __call__ repeats the common case inline.)
            route = scope.get("route") or scope.get("endpoint")
            if "fastapi" in scope:  # un-copied included routers: the context is per prefix
                route = route_context(scope) or route
            series = self._cache.get((id(route), scope["method"], status))
            if series is None:
                series = self._miss(scope, root_path or "", route, status)
            self._requests.add(series, elapsed)
        except Exception as error:
            self._recorder.internal_error("request", error)

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

    def _miss(self, scope: Scope, root_path: str, route: Any, status: int) -> list[Any]:
        # root_path is what our caller saw: routing below us appends mount prefixes.
        template = self._resolver.resolve(scope, root_path, status)
        method = normalize_method(scope["method"])
        series = self._requests.series((template, method, status))
        if method != scope["method"] or len(self._cache) >= _MAX_CACHE:
            return series
        if route is None:  # nothing matched: always the unmatched template (None lives on)
            self._cache[(id(None), method, status)] = series
        elif self._resolver.cacheable(route):
            self._pinned.append(route)  # keeps the id valid
            self._cache[(id(route), method, status)] = series
        return series

    async def _not_http(self, scope: Scope, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "websocket":
            await self._websockets(scope, receive, send)
            return
        if kind == "lifespan":
            self._cover()
            self._recorder.start_periodic_flush()
        await self.app(scope, receive, send)

def instrument_starlette(app: Any, recorder: Recorder) -> None:
    """Make the middleware the outermost layer of a Starlette or FastAPI application."""
    if getattr(app, "middleware_stack", None) is not None:
        raise RuntimeError("instrument() must be called before the application starts")
    resolver = RouteResolver(app)
    build = hooks.stack_builder(app)
    if build is None:  # the public path: inside Starlette's error layer
        app.add_middleware(PromfluxMiddleware, recorder=recorder, resolver=resolver)
        app.promflux_instrumented = True
        return

    def build_middleware_stack() -> Any:
        stack = build()
        errors = hooks.error_middleware(stack)
        if errors is not None:
            return PromfluxMiddleware(errors.app, recorder, resolver, errors=errors)
        return PromfluxMiddleware(stack, recorder, resolver)

    # Starlette builds the stack on the first call; an instance attribute wraps that build.
    build_middleware_stack.promflux = True  # type: ignore[attr-defined]
    app.build_middleware_stack = build_middleware_stack
