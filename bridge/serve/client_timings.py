"""Browser-side timings of the status page's own API calls (promflux-fetch.js posts them).

Batches are parsed by ``promflux.client_timings``, the exporter's format and rules: all or
nothing, a 400 naming the problem, routes outside the bridge's own templates recorded as
``<unmatched>``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram

from promflux.client_timings import BatchError, parse_batch

ROUTES = frozenset({"/", "/api/targets", "/api/status", "/healthz", "/metrics"})


class ClientTimings:
    """Validates batches and records them in the bridge's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.histogram = Histogram(
            "promflux_bridge_client_request_duration_seconds",
            "The status page's API calls, timed in the browser.",
            ["route", "method", "status"], registry=registry)

    def record(self, body: bytes) -> tuple[int, str]:
        """(204, "") or (400, why)."""
        try:
            timings = parse_batch(body, ROUTES)
        except BatchError as exc:
            return 400, str(exc)
        for route, method, status, seconds in timings:
            self.histogram.labels(route, method, status).observe(seconds)
        return 204, ""
