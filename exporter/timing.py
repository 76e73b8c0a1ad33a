"""What job runs and WebSocket messages share: a timer that is a context manager (sync and
async) for one run at a time, or a decorator that times every call of a function; and a
bounded set of names (kinds built from data would otherwise create series without end)."""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, cast

log = logging.getLogger("promflux.exporter")
F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T", bound="Timer")
OTHER = "_other"


class BoundedNames:
    """Names as given up to ``limit`` of them; past it, ``_other`` (logged once)."""

    def __init__(self, limit: int, what: str, owner: str) -> None:
        self.limit, self.what, self.owner = limit, what, owner
        self._known: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, name: str) -> str:
        if name in self._known:
            return name
        with self._lock:
            if len(self._known) < self.limit:
                self._known.add(name)
                return name
        if OTHER not in self._known:
            self._known.add(OTHER)
            log.warning("promflux: more than %d %s in %s; the rest count as %s",
                        self.limit, self.what, self.owner, OTHER)
        return OTHER


class Timer:
    """Subclasses say what a run records (``_begin``, ``_end``) and how to make a fresh timer
    for one call of a decorated function (``_fresh``)."""

    __slots__ = ("_started",)
    _misuse = "this timer is already timing a run; make a new one for each run"

    def __init__(self) -> None:
        self._started: float | None = None

    def _fresh(self: T) -> T:
        raise NotImplementedError

    def _begin(self) -> None:
        pass

    def _end(self, seconds: float, exc: BaseException | None) -> None:
        raise NotImplementedError

    def __enter__(self: T) -> T:
        if self._started is not None:
            raise RuntimeError(self._misuse)
        self._begin()
        self._started = time.perf_counter()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        started, self._started = self._started, None
        if started is not None:
            self._end(time.perf_counter() - started, exc)

    async def __aenter__(self: T) -> T:
        return self.__enter__()

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.__exit__(kind, exc, tb)

    def __call__(self, function: F) -> F:
        fresh = self._fresh
        if inspect.iscoroutinefunction(function):
            @functools.wraps(function)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                async with fresh():
                    return await function(*args, **kwargs)
            return cast(F, timed_async)

        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            with fresh():
                return function(*args, **kwargs)
        return cast(F, timed)
