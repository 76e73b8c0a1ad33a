"""Shows metrics of an aioprometheus registry on the same /metrics.

A service already instrumented with aioprometheus keeps its metrics. At scrape time the
registry is rendered with aioprometheus's own public renderer and read back with
prometheus_client's parser, so every metric type (counters, gauges, summaries, histograms,
const labels) comes through whatever shape aioprometheus keeps them in. A registry that
cannot be rendered is left out of the page (logged once), never failing the page.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

log = logging.getLogger("promflux.exporter")


class AioprometheusCollector(Collector):
    """Reads an ``aioprometheus.Registry`` (the default one unless given)."""

    def __init__(self, registry: Any = None) -> None:
        if registry is None:
            from aioprometheus.collectors import REGISTRY

            registry = REGISTRY
        self._registry = registry
        self._failed = False

    def collect(self) -> Iterator[Metric]:
        """Yield one family per aioprometheus collector."""
        try:
            from aioprometheus.renderer import render

            body, _ = render(self._registry, [])  # no Accept header: the text format
            text = body.decode("utf-8") if isinstance(body, bytes) else str(body)
            families = list(text_string_to_metric_families(text))
        except Exception as exc:  # an aioprometheus release that renders otherwise
            if not self._failed:
                self._failed = True
                log.warning("promflux: the aioprometheus registry's metrics are left out of "
                            "/metrics: %s: %s (logged once)", type(exc).__name__, exc)
            return
        yield from families
