"""Pure-ASGI middleware for Starlette and FastAPI applications.

Per request it reads the clock twice, wraps ``send`` to see the status and the last body
message, and adds to a list; the route template comes from what routing left in the scope
(see ``routes``). /metrics is answered by the middleware itself, so it adds no route.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

from .core import Exporter, exception_name
from .metrics import KNOWN_METHODS, OTHER_METHOD
from .routes import RouteResolver

Scope = dict[str, Any]
Message = dict[str, Any]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class PromfluxMiddleware:
    """ASGI middleware recording HTTP and WebSocket metrics into an ``Exporter``."""

    def __init__(self, app: Any, exporter: Exporter, resolver: RouteResolver) -> None:
        self.app = app
        self._exporter = exporter
        self._resolver = resolver
        self._skip = exporter.skip_paths
        self._metrics_path = exporter.metrics_path
        self._observe = exporter.requests.observe
        self._covered = False

    def _cover(self) -> None:
        if not self._covered:
            self._covered = True
            try:
                self._exporter.cover(self._resolver.routes())
            except Exception as exc:
                self._exporter.internal_error("routes", exc)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind == "websocket":
                await self._websocket(scope, receive, send)
                return
            if kind == "lifespan":
                self._cover()
                self._exporter.start_periodic_flush()
            await self.app(scope, receive, send)
            return

        root_path = scope.get("root_path", "")
        path = scope["path"]
        if root_path and path.startswith(root_path):
            path = path[len(root_path):]
        if path in self._skip:
            if path == self._metrics_path:
                await self._serve_metrics(scope, send)
            else:
                await self.app(scope, receive, send)
            return

        method = scope["method"]
        if method not in KNOWN_METHODS:
            method = OTHER_METHOD
        exporter = self._exporter
        status = 0
        recorded = False
        start = perf_counter()

        # A plain function returning send's awaitable: no extra coroutine per message.
        # The clock stops when the last body chunk is handed to the server, which writes
        # it to the socket right away; background tasks that run after it are not latency.
        def send_wrapper(message: Message) -> Any:
            nonlocal status, recorded
            if message["type"] == "http.response.start":
                status = message["status"]
            elif not recorded and not message.get("more_body", False):
                recorded = True
                self._record(scope, root_path, method, status, perf_counter() - start)
            return send(message)

        exporter.in_progress += 1
        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException as exc:
            if not recorded:
                recorded = True
                elapsed = perf_counter() - start
                # Cancelled means the server gave up on the client: 499, nginx's convention.
                code = 499 if type(exc).__name__ == "CancelledError" else 500
                self._record(scope, root_path, method, status or code, elapsed, exc)
            raise
        finally:
            exporter.in_progress -= 1
        if not recorded:
            # The app returned without finishing a response: the client went away.
            self._record(scope, root_path, method, 499, perf_counter() - start)

    def _record(
        self, scope: Scope, root_path: str, method: str, status: int, elapsed: float,
        exc: BaseException | None = None,
    ) -> None:
        try:
            route = self._resolver.resolve(scope, root_path, status)
            self._observe((route, method, status), elapsed)
            if exc is not None and isinstance(exc, Exception):
                self._exporter.metrics.exceptions.labels(
                    self._exporter.service, route, method, exception_name(exc)
                ).inc()
        except Exception as error:
            self._exporter.internal_error("request", error)

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
    """Add the middleware to a Starlette or FastAPI application."""
    resolver = RouteResolver(app)
    app.add_middleware(PromfluxMiddleware, exporter=exporter, resolver=resolver)
