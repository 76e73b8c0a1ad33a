"""prometheus_client's histogram internals: a child's per-bucket values and its sum.

prometheus_client has no "observe n times". Its children keep one value per bucket
(``_buckets``, not cumulative) and one for the sum (``_sum``), the same objects
``observe()`` increments (shared memory files in multiprocess mode), so the hot-path
accumulators add whole counts to them at a flush. Without that shape, ``observe()`` is
called once per request with values chosen inside each request's bucket so that their
total is the true sum: every bucket count and the sum come out as they would have.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Histogram

from . import usable

HOOK = "prometheus_client.histogram_values"


def _fits() -> bool:
    try:
        child = Histogram("promflux_probe", "probe", ["a"], buckets=(1.0,),
                          registry=CollectorRegistry()).labels("x")
        values = [*child._buckets, child._sum]
        child.observe(0.5)
        return (len(child._buckets) == 2 and all(callable(getattr(v, "inc", None))
                                                 and callable(getattr(v, "get", None))
                                                 for v in values)
                and child._buckets[0].get() == 1.0 and child._sum.get() == 0.5)
    except Exception:
        return False


_direct: bool | None = None


def direct() -> bool:
    """Whether counts go straight into the children's values (checked once)."""
    global _direct
    if _direct is None:
        _direct = usable(HOOK, _fits())
    return _direct


def add_counts(child: Any, bounds: Sequence[float], counts: Sequence[float],
               total: float) -> None:
    """Add ``counts[i]`` requests to bucket i (the last one is +Inf) and ``total`` to the
    sum of a prometheus_client histogram child."""
    if direct():
        for i, n in enumerate(counts):
            if n:
                child._buckets[i].inc(n)
        child._sum.inc(total)
        return
    for value in spread(bounds, counts, total):
        child.observe(value)


def spread(bounds: Sequence[float], counts: Sequence[float], total: float) -> list[float]:
    """One value per request, each inside its bucket (``bounds[i-1] < v <= bounds[i]``,
    the first from 0), adding up to ``total`` (to float rounding) whenever the buckets
    allow it: each starts just above its bucket's lower bound and is raised toward the
    upper one (the +Inf bucket's without a limit) until the sum is right."""
    uppers = [*bounds, math.inf]
    values: list[float] = []
    tops: list[float] = []
    for i, n in enumerate(counts):
        low = math.nextafter(uppers[i - 1], math.inf) if i else min(0.0, uppers[0])
        values.extend([low] * int(n))
        tops.extend([uppers[i]] * int(n))
    needed = total - math.fsum(values)
    for j, top in enumerate(tops):  # finite buckets first, up to their bounds
        if needed <= 0:
            return values
        if not math.isinf(top):
            step = min(top - values[j], needed)
            values[j] += step
            needed -= step
    unbounded = [j for j, top in enumerate(tops) if math.isinf(top)]
    for j in unbounded:  # what is left, shared by the +Inf requests
        values[j] += needed / len(unbounded)
    return values


def sum_of(child: Any) -> float | None:
    """The child's sum, or None when it cannot be read."""
    if direct():
        value: float = child._sum.get()
        return value
    return None
