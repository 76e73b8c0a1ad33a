"""WebSocket connections under ASGI: opened, active, duration and messages per route."""

from __future__ import annotations

from time import perf_counter
from typing import Any

from .recorder import Recorder
from .routes import RouteResolver

Scope = dict[str, Any]
Message = dict[str, Any]


class WebSocketRecorder:
    """Wraps one ``websocket`` scope's receive and send to follow the connection."""

    def __init__(self, app: Any, recorder: Recorder, resolver: RouteResolver) -> None:
        self.app = app
        self._recorder = recorder
        self._resolver = resolver

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        recorder = self._recorder
        metrics = recorder.metrics
        root_path = scope.get("root_path", "")
        route = ""
        accepted_at = 0.0
        # Children are bound at accept; messages are counted live, not at close.
        received_child: Any = None
        sent_child: Any = None

        async def receive_wrapper() -> Message:
            message: Message = await receive()
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
                    labels = (recorder.service, route)
                    metrics.websocket_opened.labels(*labels).inc()
                    metrics.websocket_active.labels(*labels).inc()
                    received_child = metrics.websocket_received.labels(*labels)
                    sent_child = metrics.websocket_sent.labels(*labels)
                except Exception as exc:
                    route = ""
                    recorder.internal_error("websocket", exc)

        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        finally:
            if route:
                try:
                    metrics.websocket_active.labels(recorder.service, route).dec()
                    metrics.websocket_duration.labels(recorder.service, route).observe(
                        perf_counter() - accepted_at)
                except Exception as exc:
                    recorder.internal_error("websocket", exc)


