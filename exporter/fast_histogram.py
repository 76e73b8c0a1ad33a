"""The request-latency family, rendered straight from its counts.

prometheus_client's ``generate_latest`` re-validates and re-escapes every label of every
line on every scrape: for a service with 450 request series (26 lines each) that is most of
what /metrics costs. Here each series' line prefixes are escaped once, when the series is
created; a render only writes numbers after them. The accumulator adds into it through the
same child interface it uses for a prometheus_client ``Histogram`` (``labels()``,
``_buckets[i].inc``, ``_sum.inc``, ``remove``), and ``collect()`` still gives the family to
any other reader of the registry (slower, but the same samples). No ``_created`` series.

Single-process only: in multiprocess mode the counts must live in prometheus_client's files.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import HistogramMetricFamily, Metric

_local = threading.local()  # set while our own /metrics renders the family separately


def escape_label(value: str) -> str:
    """A label value as the text and OpenMetrics formats write it."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _bound(value: float) -> str:
    """``le`` as prometheus_client writes it ("0.005", "1.0", "+Inf")."""
    return "+Inf" if math.isinf(value) else repr(float(value))


class _Value:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: float = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def get(self) -> float:
        return self.value


class _Child:
    """One label set: bucket counts (not cumulative), the sum, and its line prefixes."""

    __slots__ = ("_buckets", "_sum", "labels", "prefixes", "count_prefix", "sum_prefix")

    def __init__(self, name: str, labelnames: Sequence[str], labels: Sequence[str],
                 bounds: Sequence[float]) -> None:
        self._buckets = [_Value() for _ in range(len(bounds) + 1)]
        self._sum = _Value()
        self.labels = tuple(labels)
        pairs = ",".join(f'{k}="{escape_label(v)}"' for k, v in zip(labelnames, labels,
                                                                       strict=True))
        sep = "," if pairs else ""
        self.prefixes = [f'{name}_bucket{{{pairs}{sep}le="{_bound(b)}"}} '
                         for b in (*bounds, math.inf)]
        self.count_prefix = f"{name}_count{{{pairs}}} "
        self.sum_prefix = f"{name}_sum{{{pairs}}} "

    def lines(self, out: list[str]) -> None:
        cumulative = 0.0
        for prefix, bucket in zip(self.prefixes, self._buckets, strict=True):
            cumulative += bucket.value
            out.append(f"{prefix}{_number(cumulative)}\n")
        out.append(f"{self.count_prefix}{_number(cumulative)}\n")
        out.append(f"{self.sum_prefix}{_number(self._sum.value)}\n")


def _number(value: float) -> str:
    # Whole counts as integers (what they are); the text and OpenMetrics parsers take both.
    return str(int(value)) if value.is_integer() else repr(value)


class FastHistogram:
    """A labelled histogram family that renders itself; see the module docstring."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str],
                 buckets: Sequence[float], registry: CollectorRegistry | None) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.bounds = tuple(float(b) for b in buckets if not math.isinf(b))
        self._children: dict[tuple[str, ...], _Child] = {}
        self._lock = threading.Lock()
        help_text = documentation.replace("\\", "\\\\").replace("\n", "\\n")
        self._header = f"# HELP {name} {help_text}\n# TYPE {name} histogram\n"
        if registry is not None:
            registry.register(self)

    def labels(self, *values: Any) -> _Child:
        key = tuple(str(v) for v in values)
        child = self._children.get(key)
        if child is None:
            if len(key) != len(self.labelnames):
                raise ValueError(f"{self.name}: expected {len(self.labelnames)} label values")
            with self._lock:
                child = self._children.get(key) or _Child(self.name, self.labelnames, key,
                                                          self.bounds)
                self._children[key] = child
        return child

    def remove(self, *values: Any) -> None:
        with self._lock:
            self._children.pop(tuple(str(v) for v in values), None)

    def render(self) -> str:
        """The family in the text format (the same lines are valid OpenMetrics)."""
        out = [self._header]
        for child in list(self._children.values()):
            child.lines(out)
        return "".join(out)

    # -- as a prometheus_client collector, for any other reader of the registry ----------

    def describe(self) -> list[Metric]:
        return [HistogramMetricFamily(self.name, self.documentation,
                                      labels=list(self.labelnames))]

    def collect(self) -> Iterator[Metric]:
        if getattr(_local, "rendering_elsewhere", False):
            return  # our /metrics writes this family itself
        family = HistogramMetricFamily(self.name, self.documentation,
                                       labels=list(self.labelnames))
        for child in list(self._children.values()):
            cumulative, buckets = 0.0, []
            for bound, bucket in zip((*self.bounds, math.inf), child._buckets, strict=True):
                cumulative += bucket.value
                buckets.append((_bound(bound), cumulative))
            family.add_metric(list(child.labels), buckets, child._sum.value)
        yield family


class RenderingElsewhere:
    """``with RenderingElsewhere():`` - the fast families yield nothing to ``collect()`` in
    this thread (our /metrics appends their own text instead)."""

    def __enter__(self) -> None:
        _local.rendering_elsewhere = True

    def __exit__(self, *exc: object) -> None:
        _local.rendering_elsewhere = False
