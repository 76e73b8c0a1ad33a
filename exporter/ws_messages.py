"""WebSocket message handling by kind: ``metrics.message("reading")`` as ``with``, ``async
with`` or a decorator, inside a WebSocket handler.

The route comes from the connection the handler serves: the adapters set it in a context
variable when the connection is accepted, so a message handler needs no request object.
Outside a WebSocket connection the route is ``_unknown``. Kinds are bounded per service
(past the bound they count as ``_other``), as a kind taken from message data would
otherwise create series without end.
"""

from __future__ import annotations

import contextvars

from .metrics import ExporterMetrics
from .recorder import Recorder, exception_name
from .timing import BoundedNames, Timer

MAX_KINDS = 50
UNKNOWN_ROUTE = "_unknown"

# The route template of the WebSocket connection the current task serves.
current_route: contextvars.ContextVar[str] = contextvars.ContextVar(
    "promflux_websocket_route", default=UNKNOWN_ROUTE)


class MessageKinds:
    """The bounded set of message kinds of one service."""

    def __init__(self, metrics: ExporterMetrics, service: str) -> None:
        self.metrics = metrics
        self.service = service
        self._kinds = BoundedNames(MAX_KINDS, "WebSocket message kinds", service)

    def kind(self, name: str) -> str:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a message kind is a non-empty string, not {name!r}")
        return self._kinds(name)

    def record(self, kind: str, seconds: float) -> None:
        self.metrics.websocket_message_duration.labels(
            self.service, current_route.get(), kind).observe(seconds)


class MessageTimer(Timer):
    """Times the handling of one message (``with``/``async with``), or every call of a
    decorated function."""

    __slots__ = ("_kinds", "_kind")
    _misuse = ("this timer is already timing a message; call metrics.message(...) once per "
               "message")

    def __init__(self, kinds: MessageKinds, kind: str) -> None:
        super().__init__()
        self._kinds = kinds
        self._kind = kinds.kind(kind)

    def _fresh(self) -> MessageTimer:
        return MessageTimer(self._kinds, self._kind)

    def _end(self, seconds: float, exc: BaseException | None) -> None:
        self._kinds.record(self._kind, seconds)

def closed(recorder: Recorder, route: str, seconds: float, code: int,
           error: BaseException | None) -> None:
    """Record the end of a WebSocket connection (both adapters)."""
    metrics, service = recorder.metrics, recorder.service
    try:
        metrics.websocket_active.labels(service, route).dec()
        metrics.websocket_duration.labels(service, route).observe(seconds)
        metrics.websocket_closes.labels(service, route, str(code)).inc()
        if error is not None:
            metrics.websocket_errors.labels(service, route, exception_name(error)).inc()
    except Exception as exc:
        recorder.internal_error("websocket", exc)


