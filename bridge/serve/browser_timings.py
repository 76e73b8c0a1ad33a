"""Browser-side timings of the status page's own API calls (promflux-fetch.js posts them).

Batches are parsed by ``promflux.timing_batches``, the exporter's format and rules: all or
nothing, a 400 naming the problem, routes outside the bridge's own templates recorded as
``<unmatched>``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram

from promflux.timing_batches import BatchError, admit, parse_batch

ROUTES = frozenset({"/", "/api/targets", "/api/status", "/healthz", "/metrics"})


class ClientTimings:
    """Validates batches and records them in the bridge's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.histogram = Histogram(
            "promflux_bridge_client_request_duration_seconds",
            "The status page's API calls, timed in the browser.",
            ["route", "method", "status"], registry=registry)
        self._series: set[tuple[str, str, str]] = set()

    def record(self, body: bytes) -> tuple[int, str]:
        """(204, "") or (4xx, why)."""
        try:
            timings = parse_batch(body, ROUTES)
            admit(timings, self._series)
        except BatchError as exc:
            return exc.status, str(exc)
        for route, method, status, seconds in timings:
            self.histogram.labels(route, method, status).observe(seconds)
        return 204, ""
