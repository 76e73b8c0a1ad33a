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
import functools
import inspect
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, cast

from .metrics import ExporterMetrics
from .recorder import Recorder, exception_name

F = TypeVar("F", bound=Callable[..., Any])
MAX_KINDS = 50
OTHER = "_other"
UNKNOWN_ROUTE = "_unknown"

# The route template of the WebSocket connection the current task serves.
current_route: contextvars.ContextVar[str] = contextvars.ContextVar(
    "promflux_websocket_route", default=UNKNOWN_ROUTE)


class MessageKinds:
    """The bounded set of message kinds of one service."""

    def __init__(self, metrics: ExporterMetrics, service: str) -> None:
        self.metrics = metrics
        self.service = service
        self._kinds: set[str] = set()
        self._lock = threading.Lock()

    def kind(self, name: str) -> str:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a message kind is a non-empty string, not {name!r}")
        if name in self._kinds:
            return name
        with self._lock:
            if len(self._kinds) < MAX_KINDS:
                self._kinds.add(name)
                return name
        return OTHER

    def record(self, kind: str, seconds: float) -> None:
        self.metrics.websocket_message_duration.labels(
            self.service, current_route.get(), kind).observe(seconds)


class MessageTimer:
    """Times the handling of one message (sync and async), or every call of a function."""

    __slots__ = ("_kinds", "_kind", "_started")

    def __init__(self, kinds: MessageKinds, kind: str) -> None:
        self._kinds = kinds
        self._kind = kinds.kind(kind)
        self._started: float | None = None

    def __enter__(self) -> MessageTimer:
        if self._started is not None:
            raise RuntimeError("this timer is already timing a message; call "
                               "metrics.message(...) once per message")
        self._started = time.perf_counter()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        started, self._started = self._started, None
        if started is not None:
            self._kinds.record(self._kind, time.perf_counter() - started)

    async def __aenter__(self) -> MessageTimer:
        return self.__enter__()

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.__exit__(kind, exc, tb)

    def __call__(self, function: F) -> F:
        kinds, kind = self._kinds, self._kind
        if inspect.iscoroutinefunction(function):
            @functools.wraps(function)
            async def handle_async(*args: Any, **kwargs: Any) -> Any:
                async with MessageTimer(kinds, kind):
                    return await function(*args, **kwargs)
            return cast(F, handle_async)

        @functools.wraps(function)
        def handle(*args: Any, **kwargs: Any) -> Any:
            with MessageTimer(kinds, kind):
                return function(*args, **kwargs)
        return cast(F, handle)


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


