"""Hot-path histogram accumulation.

prometheus_client's ``labels(...).observe()`` costs about 3.6 us (locks, a label lookup
and a linear bucket scan). On the request path we only add to plain lists, with the
bucket found by ``bisect`` in C, and move the totals into the real prometheus_client
histogram when /metrics is scraped (or periodically in multiprocess mode). The
exposition, and the mmap files of multiprocess mode, stay prometheus_client's own.

Not thread-safe by design: each accumulator is fed and flushed from one event loop.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from prometheus_client import Histogram

from .compat import prometheus_client as client_values
from .fast_histogram import FastHistogram


def add(series: list[Any], bounds: tuple[float, ...], value: float) -> None:
    """Add one observation to a series list from ``HistogramAccumulator.series``."""
    series[0] += value
    # le is inclusive: bisect_left finds the first bound >= value.
    series[1 + bisect_left(bounds, value)] += 1


class HistogramAccumulator:
    """Collects observations per label key; ``flush`` adds them to a Histogram."""

    __slots__ = ("_bounds", "_nbuckets", "_series", "_histogram", "_prefix", "_children",
                 "_own", "completed")

    def __init__(
        self, histogram: Histogram | FastHistogram, bounds: Sequence[float],
        label_prefix: Sequence[str] = ()
    ) -> None:
        self._bounds = tuple(bounds)
        self._nbuckets = len(self._bounds) + 1  # the last one is +Inf
        self._series: dict[Hashable, list[Any]] = {}
        self._histogram = histogram
        self._prefix = tuple(label_prefix)
        self._children: dict[Hashable, Any] = {}
        self._own = isinstance(histogram, FastHistogram)  # our children: plain values
        self.completed = 0  # observations flushed so far

    @property
    def bounds(self) -> tuple[float, ...]:
        """The finite bucket bounds, ascending."""
        return self._bounds

    def series(self, key: Hashable) -> list[Any]:
        """The mutable ``[sum, count_0 .. count_n]`` list for ``key``, for callers that
        cache it and add to it directly (see ``add``)."""
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = [0.0] + [0] * self._nbuckets
        return series

    def observe(self, key: Hashable, value: float) -> None:
        """Count ``value`` (seconds) under ``key``, a tuple of label values after the prefix."""
        add(self.series(key), self._bounds, value)

    def touch(self, key: Hashable) -> None:
        """Create the series for ``key`` with zero counts (routes without traffic yet)."""
        self._child(key)

    def _child(self, key: Hashable) -> Any:
        child = self._children.get(key)
        if child is None:
            labels = self._prefix + tuple(str(v) for v in key)  # type: ignore[attr-defined]
            child = self._children[key] = self._histogram.labels(*labels)
        return child

    def forget(self, match: Callable[[Hashable], bool]) -> None:
        """Remove the series whose key ``match``es and that never counted anything (a
        route first taken for HTTP that turned out to be a WebSocket)."""
        for key in [k for k in self._children if match(k)]:
            series = self._series.get(key)
            child = self._children[key]
            total = child._sum.get() if self._own else client_values.sum_of(child)
            if (series is None or not any(series[1:])) and total == 0:
                del self._children[key]
                self._series.pop(key, None)
                self._histogram.remove(*(self._prefix + tuple(str(v) for v in key)))  # type: ignore[attr-defined]

    def flush(self, on_error: Callable[[BaseException], None] | None = None) -> None:
        """Move accumulated counts into the prometheus_client histogram."""
        for key, series in self._series.items():
            if series[0] == 0.0 and not any(series[1:]):
                continue
            self.completed += sum(series[1:])
            try:
                child = self._child(key)
                if self._own:
                    for i in range(self._nbuckets):
                        n = series[1 + i]
                        if n:
                            child._buckets[i].inc(n)
                    child._sum.inc(series[0])
                else:  # prometheus_client's (compat: its values, else observe())
                    client_values.add_counts(child, self._bounds, series[1:], series[0])
            except Exception as exc:  # a bad label must not stop the others
                if on_error is not None:
                    on_error(exc)
            series[0] = 0.0
            for i in range(1, self._nbuckets + 1):
                series[i] = 0
