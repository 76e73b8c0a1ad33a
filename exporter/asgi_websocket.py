"""WebSocket connections under ASGI: opened, active, duration, messages, close codes and
handler errors per route; the route is also set for ``metrics.message`` timers."""

from __future__ import annotations

from time import perf_counter
from typing import Any

from .recorder import Recorder
from .routes import RouteResolver
from .ws_messages import closed, current_route

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
        close_code: int | None = None  # the first close seen, from either side

        async def receive_wrapper() -> Message:
            nonlocal close_code
            message: Message = await receive()
            kind = message["type"]
            if received_child is not None and kind == "websocket.receive":
                received_child.inc()
            elif kind == "websocket.disconnect" and close_code is None:
                close_code = message.get("code", 1005)
            return message

        async def send_wrapper(message: Message) -> None:
            nonlocal route, accepted_at, received_child, sent_child, close_code
            await send(message)
            kind = message["type"]
            if kind == "websocket.send":
                if sent_child is not None:
                    sent_child.inc()
            elif kind == "websocket.close" and close_code is None:
                close_code = message.get("code", 1000)
            elif kind == "websocket.accept" and not accepted_at:
                accepted_at = perf_counter()
                try:
                    route = self._resolver.resolve(scope, root_path, 101)
                    labels = (recorder.service, route)
                    metrics.websocket_opened.labels(*labels).inc()
                    metrics.websocket_active.labels(*labels).inc()
                    received_child = metrics.websocket_received.labels(*labels)
                    sent_child = metrics.websocket_sent.labels(*labels)
                    current_route.set(route)
                except Exception as exc:
                    route = ""
                    recorder.internal_error("websocket", exc)

        error: BaseException | None = None
        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        except Exception as exc:
            error = exc
            raise
        finally:
            if route:
                # A handler that raised is closed by the server with 1011; no close at all
                # is an abnormal closure (1006).
                code = close_code if close_code is not None else (
                    1011 if error is not None else 1006)
                closed(recorder, route, perf_counter() - accepted_at, code, error)

