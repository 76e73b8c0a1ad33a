"""Background jobs: ``metrics.job("sync_devices")`` as ``with``, ``async with`` or a
decorator on sync and async functions.

Each run records its duration under its outcome (``success``; ``failure`` for an
exception, counted by exception type; ``cancelled`` for a cancellation or interpreter exit,
which is no failure of the job), the runs in progress, and the time of the last success.
Job kinds and exception types are bounded per service (a name built from data would
otherwise create series without end); past the bound they are counted as ``_other``.
Thread-safe: a run's updates are made under one lock, which a scrape takes to collect them
together (a run is not a hot path).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .metrics import ExporterMetrics
from .recorder import exception_name
from .timing import BoundedNames, Timer

MAX_KINDS = 100
MAX_EXCEPTIONS = 100


class JobRecorder:
    """Where the runs of one service's jobs are recorded."""

    def __init__(self, metrics: ExporterMetrics, service: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.metrics = metrics
        self.service = service
        self.clock = clock
        self._kinds = BoundedNames(MAX_KINDS, "job kinds", service)
        self._exceptions = BoundedNames(MAX_EXCEPTIONS, "exception types", service)

    def kind(self, name: str) -> str:
        """The label for job kind ``name`` (``_other`` past the bound)."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a job kind is a non-empty string, not {name!r}")
        return self._kinds(name)

    def started(self, kind: str) -> None:
        metrics = self.metrics
        with metrics.job_lock:
            metrics.jobs_in_progress.labels(self.service, kind).inc()

    def finished(self, kind: str, seconds: float, exc: BaseException | None) -> None:
        metrics, service = self.metrics, self.service
        exception = (self._exceptions(exception_name(exc))
                     if isinstance(exc, Exception) else "")
        with metrics.job_lock:  # one step for a scrape (see ExporterMetrics._jobs)
            metrics.jobs_in_progress.labels(service, kind).dec()
            if exc is None:
                outcome = "success"
                metrics.job_last_success.labels(service, kind).set(self.clock())
            elif exception:
                outcome = "failure"
                metrics.job_failures.labels(service, kind, exception).inc()
            else:  # CancelledError, KeyboardInterrupt, SystemExit: stopped, not failed
                outcome = "cancelled"
            metrics.job_duration.labels(service, kind, outcome).observe(seconds)


class JobRun(Timer):
    """One job kind's timer: ``with``/``async with`` for one run, or a decorator."""

    __slots__ = ("_jobs", "_kind")
    _misuse = "this job timer is already timing a run; call metrics.job(...) once per run"

    def __init__(self, jobs: JobRecorder, kind: str) -> None:
        super().__init__()
        self._jobs = jobs
        self._kind = jobs.kind(kind)

    def _fresh(self) -> JobRun:
        return JobRun(self._jobs, self._kind)

    def _begin(self) -> None:
        self._jobs.started(self._kind)

    def _end(self, seconds: float, exc: BaseException | None) -> None:
        self._jobs.finished(self._kind, seconds, exc)
