"""Hot-path histogram accumulation.

prometheus_client's ``labels(...).observe()`` costs about 3.6 us (locks, a label lookup
and a linear bucket scan). On the request path we only append the duration to a plain list
(a series' *pending* values). The list is folded into bucket counts when it reaches
``FOLD_AT`` values and when /metrics is scraped (or periodically in multiprocess mode):
one C sort and a bisect per bound for a whole batch, where a bisect per request cost about
1,400 instructions (docs/performance.md). Folded totals move into the real
prometheus_client histogram on flush; the exposition, and the mmap files of multiprocess
mode, stay prometheus_client's own.

Not thread-safe by design: each accumulator is fed and flushed from one event loop.
"""

from __future__ import annotations

import operator
from bisect import bisect_right
from collections.abc import Callable, Hashable, Sequence
from functools import reduce
from typing import Any

from prometheus_client import Histogram

from .compat import prometheus_client as client_values
from .fast_histogram import FastHistogram

FOLD_AT = 128  # pending values per series: at most about 4 KB before they are folded


def fold_into(counts: list[Any], bounds: tuple[float, ...], pending: list[float]) -> None:
    """Move ``pending`` (durations) into ``counts`` (``[sum, count_0 .. count_n]``, the last
    count for +Inf) and empty it. A value lands in the first bucket whose bound is >= it
    (le is inclusive), as prometheus_client's ``observe`` does."""
    # In arrival order, one addition at a time, as observe() would (sum() compensates
    # rounding from Python 3.12 on, which would differ in the last digits).
    counts[0] = reduce(operator.add, pending, counts[0])
    values = sorted(pending)
    pending.clear()
    below = 0
    for i, bound in enumerate(bounds, 1):
        upto = bisect_right(values, bound, below)
        counts[i] += upto - below
        below = upto
    counts[-1] += len(values) - below


class HistogramAccumulator:
    """Collects observations per label key; ``flush`` adds them to a Histogram."""

    __slots__ = ("_bounds", "_nbuckets", "_series", "_counts", "_histogram", "_prefix",
                 "_children", "_own", "completed")

    def __init__(
        self, histogram: Histogram | FastHistogram, bounds: Sequence[float],
        label_prefix: Sequence[str] = ()
    ) -> None:
        self._bounds = tuple(bounds)
        self._nbuckets = len(self._bounds) + 1  # the last one is +Inf
        self._series: dict[Hashable, list[float]] = {}  # key -> pending values
        # id(pending) -> its folded [sum, count_0 ..] (a pending list lives as long as its key)
        self._counts: dict[int, list[Any]] = {}
        self._histogram = histogram
        self._prefix = tuple(label_prefix)
        self._children: dict[Hashable, Any] = {}
        self._own = isinstance(histogram, FastHistogram)  # our children: plain values
        self.completed = 0  # observations flushed so far

    @property
    def bounds(self) -> tuple[float, ...]:
        """The finite bucket bounds, ascending."""
        return self._bounds

    def series(self, key: Hashable) -> list[float]:
        """The pending-values list for ``key``, for callers that cache it and append to it
        directly; see ``add`` for the rule they follow."""
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = []
            self._counts[id(series)] = [0.0] + [0] * self._nbuckets
        return series

    def fold(self, series: list[float]) -> None:
        """Fold a full pending list (one from ``series``) into its bucket counts."""
        try:
            fold_into(self._counts[id(series)], self._bounds, series)
        except Exception:  # (never raised into a request; the values stay pending)
            pass

    def add(self, series: list[float], value: float) -> None:
        """Add one duration to a pending list from ``series``."""
        series.append(value)
        if len(series) >= FOLD_AT:
            self.fold(series)

    def observe(self, key: Hashable, value: float) -> None:
        """Count ``value`` (seconds) under ``key``, a tuple of label values after the prefix.
        A NaN duration is not counted (it has no bucket)."""
        if value == value:
            self.add(self.series(key), value)

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
            counts = None if series is None else self._counts[id(series)]
            child = self._children[key]
            total = child._sum.get() if self._own else client_values.sum_of(child)
            if not series and (counts is None or not any(counts[1:])) and total == 0:
                del self._children[key]
                if series is not None:
                    del self._series[key], self._counts[id(series)]
                self._histogram.remove(*(self._prefix + tuple(str(v) for v in key)))  # type: ignore[attr-defined]

    def flush(self, on_error: Callable[[BaseException], None] | None = None) -> None:
        """Move accumulated counts into the prometheus_client histogram."""
        for key, series in self._series.items():
            counts = self._counts[id(series)]
            if series:
                fold_into(counts, self._bounds, series)
            if counts[0] == 0.0 and not any(counts[1:]):
                continue
            self.completed += sum(counts[1:])
            try:
                child = self._child(key)
                if self._own:
                    for i in range(self._nbuckets):
                        n = counts[1 + i]
                        if n:
                            child._buckets[i].inc(n)
                    child._sum.inc(counts[0])
                else:  # prometheus_client's (compat: its values, else observe())
                    client_values.add_counts(child, self._bounds, counts[1:], counts[0])
            except Exception as exc:  # a bad label must not stop the others
                if on_error is not None:
                    on_error(exc)
            counts[0] = 0.0
            for i in range(1, self._nbuckets + 1):
                counts[i] = 0
