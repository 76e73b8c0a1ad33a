"""Percentiles from histogram bucket increases: Prometheus's histogram_quantile.

Pure functions, no I/O. Follows promql/quantile.go (the rule is written out in
docs/algorithms.md): the input is the increase of every cumulative ``le`` bucket over one interval.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from ..native import compiled

# Relative differences below this count as equal when repairing non-monotonic buckets.
EPSILON = 1e-12


def normalize(buckets: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Sort by bound, merge equal bounds, and make counts non-decreasing."""
    merged: dict[float, float] = {}
    for bound, count in buckets:
        merged[bound] = merged.get(bound, 0.0) + count
    out: list[tuple[float, float]] = []
    previous = 0.0
    for bound in sorted(merged):
        # A count below its predecessor (float noise, or a scrape that raced an
        # observation) is raised to it; relative differences under 1e-12 count as equal.
        count = merged[bound]
        if count < previous or abs(count - previous) <= EPSILON * abs(previous):
            count = previous
        out.append((bound, count))
        previous = count
    return out


def normalize_map(buckets: Mapping[float, float]) -> list[tuple[float, float]]:
    """``normalize`` of a bound -> count mapping (by the compiled core when it runs)."""
    if compiled is not None:
        out: list[tuple[float, float]] | None = compiled.normalize(buckets, EPSILON)
        if out is not None:
            return out
    return normalize(buckets.items())


def quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """The ``q`` quantile of normalized (bound, cumulative count) buckets.

    ``None`` where Prometheus gives NaN or there is nothing to say: no +Inf bucket, fewer
    than two buckets, or no observations. Nothing is ever NaN or infinite for 0 <= q <= 1.
    (The compiled core gives the same for a list of float pairs, what ``normalize`` makes.)
    """
    if compiled is not None:
        value: float | None = compiled.quantile(q, buckets)
        if value is not NotImplemented:
            return value
    if math.isnan(q):
        return None
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    if len(buckets) < 2 or not math.isinf(buckets[-1][0]) or buckets[-1][0] < 0:
        return None
    total = buckets[-1][1]
    if total <= 0:
        return None
    rank = q * total
    index = len(buckets) - 1
    for i in range(len(buckets) - 1):
        if buckets[i][1] >= rank:
            index = i
            break
    if index == len(buckets) - 1:
        return buckets[-2][0]
    upper, count = buckets[index]
    if index == 0 and upper <= 0:
        return upper
    lower, below = (0.0, 0.0) if index == 0 else buckets[index - 1]
    in_bucket = count - below
    if in_bucket <= 0:
        return None  # q = 0 over an empty first bucket: Prometheus says NaN
    return lower + (upper - lower) * (rank - below) / in_bucket
