"""What the framework adapters record into: metric objects, hot-path accumulators and
/metrics rendering for one service.

The adapters (``starlette_adapter``, ``aiohttp_adapter``) feed it; the application never
sees it: ``instrument`` returns the small ``Metrics`` handle (``handle``) instead.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry

from . import browser_timings
from .accumulator import HistogramAccumulator
from .exposition import MetricsAuth, render
from .fast_histogram import FastHistogram
from .metrics import LATENCY_BUCKETS, QUEUE_WAIT_BUCKETS, RouteInfo, check_buckets
from .resources import multiprocess_worker_pids
from .sharing import join, shared_metrics, show_aioprometheus, show_resources
from .siblings import advice, sibling_workers

log = logging.getLogger("promflux.exporter")

# How often each worker moves its request counts into the shared files in multiprocess mode.
MULTIPROCESS_FLUSH_SECONDS = 1.0


def multiprocess_dir() -> str | None:
    """prometheus_client's multiprocess directory, when multiprocess mode is on."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get(
        "prometheus_multiproc_dir"
    )


def exception_name(exc: BaseException) -> str:
    """``module.Class`` for an exception (bare ``Class`` for builtins)."""
    cls = type(exc)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


@functools.cache
def _tell_siblings() -> None:
    """At the first scrape (the workers have all started by then), once per process."""
    found = sibling_workers()
    if found:
        log.warning(advice(found))


def exposition(registry: CollectorRegistry, directory: str | None
               ) -> tuple[CollectorRegistry, Callable[[], list[int]] | None]:
    """What /metrics shows: in multiprocess mode the merged files of all workers (and a
    function listing their pids) plus this process's scrape-time collectors; otherwise
    the given registry."""
    if not directory:
        return registry, None
    from prometheus_client import multiprocess

    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged)

    def worker_pids() -> list[int]:
        return multiprocess_worker_pids(directory)

    return merged, worker_pids


class Recorder:
    """Everything one instrumented service exports; the adapters' side of it."""

    def __init__(
        self,
        service: str,
        *,
        registry: CollectorRegistry | None = REGISTRY,
        metrics_path: str = "/metrics",
        exclude_paths: Iterable[str] = ("/health", "/healthz"),
        disk_path: str = "/",
        auth: MetricsAuth | None = None,
        aioprometheus_registry: Any = None,
        resources: bool = True,
        browser_origins: Iterable[str] | None = None,
        browser_auth: bool = False,
        buckets: Iterable[float] = LATENCY_BUCKETS,
    ) -> None:
        if not service or not isinstance(service, str):
            raise ValueError("service must be a non-empty string")
        if registry is None:  # a registry of its own, still shown at /metrics
            registry = CollectorRegistry()
        if not metrics_path.startswith("/"):
            raise ValueError(f"metrics_path must start with '/': {metrics_path!r}")
        self.service = service
        self.metrics_path = metrics_path
        base = metrics_path.rstrip("/")
        self.client_timings_path = base + "/client-timings"
        self.script_path = base + "/" + browser_timings.SCRIPT_NAME
        self.skip_paths = frozenset({metrics_path, self.client_timings_path, self.script_path,
                                     *exclude_paths})
        self._client_routes: frozenset[str] = frozenset()
        self._client_series: set[tuple[str, str, str]] = set()
        self.browser_origins = None if browser_origins is None else frozenset(browser_origins)
        self.browser_auth = browser_auth
        self.auth = auth
        self.multiprocess_dir = multiprocess_dir()
        bounds = check_buckets(buckets)
        # Single-process: the request family renders itself (docs/performance.md).
        self.shared = shared_metrics(registry, service, bounds, fast=not self.multiprocess_dir)
        self.metrics = self.shared.metrics
        self.requests = HistogramAccumulator(self.metrics.request_duration, bounds, (service,))
        self.queue_waits = HistogramAccumulator(
            self.metrics.queue_wait, QUEUE_WAIT_BUCKETS, (service,)
        )
        self._started_counters: list[Callable[[], int]] = []
        self.size_callbacks: dict[str, Callable[[], float]] = {}
        self._logged_errors: set[str] = set()
        self._flush_handle: asyncio.TimerHandle | None = None
        self.loop: asyncio.AbstractEventLoop | None = None  # where the accumulators live

        self.exposition_registry, pids = exposition(registry, self.multiprocess_dir)
        if resources:
            show_resources(self.exposition_registry, service, disk_path, pids)
        if aioprometheus_registry is not None:
            show_aioprometheus(self.exposition_registry, aioprometheus_registry)
        join(self.shared, service, self)

    def internal_error(self, where: str, exc: BaseException) -> None:
        """Log an error inside metrics collection once per place, and count every one."""
        try:
            self.metrics.exporter_errors.labels(self.service, where).inc()
            if where not in self._logged_errors:
                self._logged_errors.add(where)
                log.error("promflux: error in %s metrics (logged once): %r", where, exc)
        except Exception:
            pass

    def cover(self, routes: Iterable[RouteInfo]) -> None:
        """Create zero-count series for every route, so rates start from a true zero."""
        metrics = self.metrics
        routes = list(routes)
        self._client_routes = self._client_routes | {
            r.template for r in routes if r.template not in self.skip_paths}
        for route in routes:
            if route.template in self.skip_paths:
                continue
            if route.websocket:
                for metric in (metrics.websocket_opened, metrics.websocket_received,
                               metrics.websocket_sent, metrics.websocket_active):
                    metric.labels(self.service, route.template)
                continue
            # Starlette and aiohttp add HEAD to every GET route; list it only when alone.
            methods = route.methods - {"HEAD"} or route.methods
            for method in sorted(methods):
                self.requests.touch((route.template, method, route.status))

    def client_timings(self, body: bytes, origin: str | None = None,
                       authorization: str | None = None) -> tuple[int, bytes]:
        """Record a batch from promflux-fetch.js: (204, b"") or (4xx, why).

        With ``browser_auth`` the beacon needs /metrics' credentials; with
        ``browser_origins`` the request's Origin must be one of them."""
        if self.browser_auth and self.auth is not None and not self.auth.allows(authorization):
            return 401, b"401 Unauthorized: client timings need credentials\n"
        if self.browser_origins is not None and origin not in self.browser_origins:
            return 403, b"403 Forbidden: origin not allowed\n"
        try:
            timings = browser_timings.parse_batch(body, self._client_routes)
            browser_timings.admit(timings, self._client_series)
        except browser_timings.BatchError as exc:
            return exc.status, f"{exc}\n".encode()
        histogram = self.metrics.client_request_duration
        for route, method, status, seconds in timings:
            histogram.labels(self.service, route, method, status).observe(seconds)
        return 204, b""

    def add_started_counter(self, counter: Callable[[], int]) -> None:
        """Register an adapter's count of started requests (for requests in progress)."""
        self._started_counters.append(counter)

    @property
    def in_progress(self) -> int:
        """Requests started and not yet recorded (exact right after ``flush``)."""
        started = sum(counter() for counter in self._started_counters)
        return started - self.requests.completed

    def flush(self) -> None:
        """Move hot-path counts into the prometheus_client metrics; read size callbacks."""
        def on_error(exc: BaseException) -> None:
            self.internal_error("flush", exc)

        self.requests.flush(on_error)
        self.queue_waits.flush(on_error)
        try:
            # every application of this service in the process (usually one)
            together = sum(max(r.in_progress, 0) for r in self.shared.recorders[self.service])
            self.metrics.requests_in_progress.labels(self.service).set(together)
        except Exception as exc:
            on_error(exc)
        for name, callback in list(self.size_callbacks.items()):
            try:
                self.metrics.queue_size.labels(self.service, name).set(float(callback()))
            except Exception as exc:
                self.internal_error(f"size_callback:{name}", exc)

    def flush_shared(self) -> None:
        """Flush, and every other application's recorder on this registry whose counts
        live on this loop (the page shows them all)."""
        loop = asyncio.get_running_loop()
        for group in list(self.shared.recorders.values()):
            for recorder in list(group):
                if recorder is self or recorder.loop in (None, loop):
                    recorder.flush()

    def start_periodic_flush(self) -> None:
        """In multiprocess mode, flush every second so other workers' scrapes see our counts."""
        if not self.multiprocess_dir or self._flush_handle is not None:
            return
        loop = asyncio.get_running_loop()

        def tick() -> None:
            self.flush()
            self._flush_handle = loop.call_later(MULTIPROCESS_FLUSH_SECONDS, tick)

        self._flush_handle = loop.call_later(MULTIPROCESS_FLUSH_SECONDS, tick)

    def stop_periodic_flush(self) -> None:
        """Cancel the multiprocess flush timer and flush what is left."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self.flush()

    def render(self, accept: str | None, accept_encoding: str | None,
               fast: str | None = None) -> tuple[bytes, list[tuple[str, str]]]:
        """Render /metrics (blocking: psutil and the multiprocess files; run it off-loop).
        ``fast``: the request family's text, rendered on the loop right after the flush."""
        family = self.metrics.request_duration
        if fast is None and isinstance(family, FastHistogram):
            fast = family.render()
        if not self.multiprocess_dir:
            _tell_siblings()
        return render(self.exposition_registry, accept, accept_encoding, fast)

    async def scrape(
        self, accept: str | None, accept_encoding: str | None, authorization: str | None
    ) -> tuple[int, bytes, list[tuple[str, str]]]:
        """Status, body and headers for a /metrics request; runs rendering in a thread."""
        if self.auth is not None and not self.auth.allows(authorization):
            body = b"401 Unauthorized: /metrics needs credentials\n"
            return 401, body, [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("WWW-Authenticate", self.auth.challenge()),
                ("Content-Length", str(len(body))),
            ]
        self.flush_shared()  # on the loop: the accumulators are loop-only
        family = self.metrics.request_duration  # its text too: a few ms, consistent counts
        fast = family.render() if isinstance(family, FastHistogram) else None
        loop = asyncio.get_running_loop()
        body, headers = await loop.run_in_executor(None, self.render, accept, accept_encoding,
                                                   fast)
        return 200, body, headers


def adopt_running_loop(recorder: Recorder) -> None:
    """Remember the running event loop (if any) as the one that feeds the recorder's
    accumulators, so a scrape from another thread flushes on it (``worker``)."""
    try:
        recorder.loop = recorder.loop or asyncio.get_running_loop()
    except RuntimeError:
        pass
