"""Shows metrics of an aioprometheus registry on the same /metrics.

A service already instrumented with aioprometheus keeps its metrics; this collector
translates them into prometheus_client families at scrape time.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString


class AioprometheusCollector(Collector):
    """Reads an ``aioprometheus.Registry`` (the default one unless given)."""

    def __init__(self, registry: Any = None) -> None:
        if registry is None:
            from aioprometheus.collectors import REGISTRY

            registry = REGISTRY
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        """Yield one family per aioprometheus collector."""
        for collector in list(self._registry.get_all()):
            family = _family(collector)
            if family is not None:
                yield family


def _labels(collector: Any, labels: dict[str, Any]) -> dict[str, str]:
    merged = {**(collector.const_labels or {}), **(labels or {})}
    return {str(k): str(v) for k, v in merged.items()}


def _family(collector: Any) -> Metric | None:
    kind = getattr(getattr(collector, "kind", None), "name", "")
    name, doc = collector.name, collector.doc or collector.name
    samples = collector.get_all()
    if kind == "counter":
        fam: Metric = CounterMetricFamily(name.removesuffix("_total"), doc)
        for labels, value in samples:
            fam.samples.append(_sample(fam.name + "_total", _labels(collector, labels),
                                       float(value)))
        return fam
    if kind == "gauge":
        fam = GaugeMetricFamily(name, doc)
        for labels, value in samples:
            fam.samples.append(_sample(name, _labels(collector, labels), float(value)))
        return fam
    if kind == "histogram":
        fam = HistogramMetricFamily(name, doc)
        for labels, hist in samples:
            base = _labels(collector, labels)
            for bound, count in hist.buckets.items():
                le = "+Inf" if math.isinf(bound) else floatToGoString(bound)
                fam.samples.append(_sample(name + "_bucket", {**base, "le": le}, float(count)))
            fam.samples.append(_sample(name + "_count", base, float(hist.observations)))
            fam.samples.append(_sample(name + "_sum", base, float(hist.sum)))
        return fam
    if kind == "summary":
        fam = SummaryMetricFamily(name, doc)
        for labels, estimator in samples:
            base = _labels(collector, labels)
            for invariant in estimator._invariants:
                q = invariant._quantile
                fam.samples.append(_sample(
                    name, {**base, "quantile": floatToGoString(q)}, float(estimator.query(q))))
            fam.samples.append(_sample(name + "_count", base, float(estimator._observations)))
            fam.samples.append(_sample(name + "_sum", base, float(estimator._sum)))
        return fam
    return None


def _sample(name: str, labels: dict[str, str], value: float) -> Sample:
    return Sample(name, labels, value, None, None)
