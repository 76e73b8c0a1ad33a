"""Background jobs: ``metrics.job("sync_devices")`` as ``with``, ``async with`` or a
decorator on sync and async functions.

Each run records its duration under its outcome (``success``; ``failure`` for an
exception, counted by exception type; ``cancelled`` for a cancellation or interpreter exit,
which is no failure of the job), the runs in progress, and the time of the last success.
Job kinds and exception types are bounded per service (a name built from data would
otherwise create series without end); past the bound they are counted as ``_other``.
Thread-safe: prometheus_client's metrics take their own locks, and a run is not a hot path.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, cast

from .metrics import ExporterMetrics
from .recorder import exception_name

log = logging.getLogger("promflux.exporter")
F = TypeVar("F", bound=Callable[..., Any])
MAX_KINDS = 100
MAX_EXCEPTIONS = 100
OTHER = "_other"


class JobRecorder:
    """Where the runs of one service's jobs are recorded."""

    def __init__(self, metrics: ExporterMetrics, service: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.metrics = metrics
        self.service = service
        self.clock = clock
        self._kinds: set[str] = set()
        self._exceptions: set[str] = set()
        self._lock = threading.Lock()

    def kind(self, name: str) -> str:
        """The label for job kind ``name`` (``_other`` past the bound)."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a job kind is a non-empty string, not {name!r}")
        return self._bounded(name, self._kinds, MAX_KINDS, "job kinds")

    def _bounded(self, name: str, known: set[str], limit: int, what: str) -> str:
        if name in known:
            return name
        with self._lock:
            if len(known) < limit:
                known.add(name)
                return name
        if OTHER not in known:
            known.add(OTHER)
            log.warning("promflux: more than %d %s in %s; the rest count as %s",
                        limit, what, self.service, OTHER)
        return OTHER

    def started(self, kind: str) -> None:
        self.metrics.jobs_in_progress.labels(self.service, kind).inc()

    def finished(self, kind: str, seconds: float, exc: BaseException | None) -> None:
        metrics, service = self.metrics, self.service
        metrics.jobs_in_progress.labels(service, kind).dec()
        if exc is None:
            outcome = "success"
            metrics.job_last_success.labels(service, kind).set(self.clock())
        elif isinstance(exc, Exception):
            outcome = "failure"
            name = self._bounded(exception_name(exc), self._exceptions, MAX_EXCEPTIONS,
                                 "exception types")
            metrics.job_failures.labels(service, kind, name).inc()
        else:  # CancelledError, KeyboardInterrupt, SystemExit: stopped, not failed
            outcome = "cancelled"
        metrics.job_duration.labels(service, kind, outcome).observe(seconds)


class JobRun:
    """One job kind's timer: a context manager (sync and async) for one run at a time, or a
    decorator that times every call of a function (each call its own run)."""

    __slots__ = ("_jobs", "_kind", "_started")

    def __init__(self, jobs: JobRecorder, kind: str) -> None:
        self._jobs = jobs
        self._kind = jobs.kind(kind)
        self._started: float | None = None

    def __enter__(self) -> JobRun:
        if self._started is not None:
            raise RuntimeError("this job timer is already timing a run; call "
                               "metrics.job(...) once per run")
        self._jobs.started(self._kind)
        self._started = time.perf_counter()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        started, self._started = self._started, None
        if started is not None:
            self._jobs.finished(self._kind, time.perf_counter() - started, exc)

    async def __aenter__(self) -> JobRun:
        return self.__enter__()

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.__exit__(kind, exc, tb)

    def __call__(self, function: F) -> F:
        jobs, kind = self._jobs, self._kind
        if inspect.iscoroutinefunction(function):
            @functools.wraps(function)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                async with JobRun(jobs, kind):
                    return await function(*args, **kwargs)
            return cast(F, run_async)

        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> Any:
            with JobRun(jobs, kind):
                return function(*args, **kwargs)
        return cast(F, run)
