"""The exporter's metric families: one naming convention, listed in docs/metrics.md.

Every family carries a ``service`` label so that one Prometheus or bridge can tell
services apart even when their targets share a host.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from typing import NamedTuple

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from promflux.labels import UNMATCHED

from .fast_histogram import FastHistogram

__all__ = ["UNMATCHED", "LATENCY_BUCKETS", "RouteInfo", "ExporterMetrics"]

# Resolution where services live: 1 ms steps' worth below 10 ms (ingestion routes answer
# in well under 5 ms), 25-50 ms steps from 100 ms to 500 ms (the p95 limit is a bound, so
# "share of requests within 500 ms" is exact), then coarser to 10 s. A percentile read
# from these is within one bucket of the truth: at most 2.5 ms below 10 ms, 50 ms around
# the 500 ms limit. ``instrument(..., buckets=...)`` takes another layout.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3,
    0.35, 0.4, 0.45, 0.5, 0.6, 0.75, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0,
)


def check_buckets(buckets: Iterable[float]) -> tuple[float, ...]:
    """Bucket upper bounds as given to ``instrument``: increasing, positive and finite
    (+Inf is always added). ValueError says what is wrong."""
    bounds = tuple(float(b) for b in buckets)
    if not bounds:
        raise ValueError("buckets: give at least one upper bound")
    if any(not math.isfinite(b) or b <= 0 for b in bounds):
        raise ValueError(f"buckets must be positive finite seconds (+Inf is added): {bounds}")
    if any(b >= c for b, c in zip(bounds, bounds[1:], strict=False)):
        raise ValueError(f"buckets must increase: {bounds}")
    return bounds


QUEUE_WAIT_BUCKETS: tuple[float, ...] = (
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)
# Background jobs run from milliseconds to an hour.
JOB_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    600.0, 1800.0, 3600.0,
)
WEBSOCKET_DURATION_BUCKETS: tuple[float, ...] = (
    0.1, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0,
)



class RouteInfo(NamedTuple):
    """A route known at start-up, listed with zero counts before any traffic."""

    template: str
    methods: frozenset[str]
    status: int = 200  # the route's success status (FastAPI's status_code=...)
    websocket: bool = False


class _Together(Collector):
    """Families collected as one snapshot: under the lock their writers take."""

    def __init__(self, lock: threading.Lock, parts: list[MetricWrapperBase]) -> None:
        self.lock = lock
        self.parts = parts

    def describe(self) -> list[Metric]:
        return [family for part in self.parts for family in part.describe()]

    def collect(self) -> list[Metric]:
        with self.lock:
            return [family for part in self.parts for family in part.collect()]


class ExporterMetrics:
    """The prometheus_client metric objects of one instrumented service."""

    def __init__(self, service: str, registry: CollectorRegistry | None,
                 buckets: tuple[float, ...] = LATENCY_BUCKETS, fast: bool = False) -> None:
        self.service = service
        self.buckets = buckets
        self.fast = fast  # the request family renders itself (single-process mode)
        self._http(registry)
        self._websocket(registry)
        self._work(registry)
        self._jobs(registry)
        self.exporter_errors = Counter(
            "promflux_exporter_errors",
            "Errors inside metrics collection; the request itself went on untouched.",
            ["service", "where"], registry=registry)

    def _http(self, registry: CollectorRegistry | None) -> None:
        name, labels = "http_request_duration_seconds", ["service", "route", "method", "status"]
        doc = "Time from receiving a request to sending the last byte of its response."
        self.request_duration: Histogram | FastHistogram = (
            FastHistogram(name, doc, labels, self.buckets, registry) if self.fast
            else Histogram(name, doc, labels, buckets=self.buckets, registry=registry))
        self.requests_in_progress = Gauge(
            "http_requests_in_progress", "HTTP requests being handled now.", ["service"],
            registry=registry, multiprocess_mode="livesum")
        self.exceptions = Counter(
            "http_exceptions",
            "Unhandled exceptions raised by request handlers, by exception type.",
            ["service", "route", "method", "exception"], registry=registry)
        self.client_request_duration = Histogram(
            "http_client_request_duration_seconds",
            "API calls timed in users' browsers (promflux-fetch.js), by route template.",
            ["service", "route", "method", "status"], buckets=self.buckets,
            registry=registry)

    def _websocket(self, registry: CollectorRegistry | None) -> None:
        labels = ["service", "route"]
        self.websocket_active = Gauge(
            "websocket_connections_active", "Open WebSocket connections.", labels,
            registry=registry, multiprocess_mode="livesum")
        self.websocket_opened = Counter(
            "websocket_connections_opened", "WebSocket connections accepted.", labels,
            registry=registry)
        self.websocket_received = Counter(
            "websocket_messages_received", "WebSocket data messages received from clients.",
            labels, registry=registry)
        self.websocket_sent = Counter(
            "websocket_messages_sent", "WebSocket data messages sent to clients.", labels,
            registry=registry)
        self.websocket_duration = Histogram(
            "websocket_connection_duration_seconds",
            "How long accepted WebSocket connections stayed open.", labels,
            buckets=WEBSOCKET_DURATION_BUCKETS, registry=registry)
        self.websocket_message_duration = Histogram(
            "websocket_message_duration_seconds",
            "Time the service spent handling one WebSocket message, by the kind it names.",
            [*labels, "kind"], buckets=self.buckets, registry=registry)
        self.websocket_closes = Counter(
            "websocket_closes", "WebSocket connections closed, by close code (1006: the "
            "connection dropped without a close).", [*labels, "code"], registry=registry)
        self.websocket_errors = Counter(
            "websocket_errors", "WebSocket handlers that ended with an exception, by type.",
            [*labels, "exception"], registry=registry)

    def _jobs(self, registry: CollectorRegistry | None) -> None:
        # A run's outcome touches several families (in progress, duration, failures, last
        # success); ``job_lock`` makes that one step for a scrape, which collects the four
        # together under it (a scrape never sees a failure without its run).
        self.job_lock = threading.Lock()
        self.job_duration = Histogram(
            "job_duration_seconds",
            "Background job runs, by job kind and outcome (success, failure, cancelled).",
            ["service", "job", "outcome"], buckets=JOB_BUCKETS, registry=None)
        self.job_failures = Counter(
            "job_failures", "Failed job runs, by the exception that ended them.",
            ["service", "job", "exception"], registry=None)
        self.jobs_in_progress = Gauge(
            "jobs_in_progress", "Job runs started and not yet finished.", ["service", "job"],
            registry=None, multiprocess_mode="livesum")
        self.job_last_success = Gauge(
            "job_last_success_timestamp_seconds",
            "When a run of the job last succeeded (Unix time).", ["service", "job"],
            registry=None, multiprocess_mode="max")
        if registry is not None:
            registry.register(_Together(self.job_lock, [
                self.jobs_in_progress, self.job_duration, self.job_failures,
                self.job_last_success]))

    def _work(self, registry: CollectorRegistry | None) -> None:
        self.events = Counter(
            "events_processed", "Events processed by the service, by kind.",
            ["service", "kind"], registry=registry)
        self.queue_size = Gauge(
            "queue_size",
            "Items waiting in a queue (or any value reported by a size callback).",
            ["service", "queue"], registry=registry, multiprocess_mode="livesum")
        self.queue_wait = Histogram(
            "queue_wait_seconds", "Time an item spent in a queue, from put to get.",
            ["service", "queue"], buckets=QUEUE_WAIT_BUCKETS, registry=registry)
