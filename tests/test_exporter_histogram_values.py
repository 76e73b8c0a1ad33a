"""Counts added to a prometheus_client histogram without its internal values (the public
``observe()`` path): every bucket and the sum equal those of observing the real values."""

from __future__ import annotations

import math
from bisect import bisect_left

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram
from promflux.exporter.compat import prometheus_client as values

BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def samples(histogram: Histogram) -> dict[str, float]:
    return {f"{s.name}{s.labels.get('le', '')}": s.value
            for family in histogram.collect() for s in family.samples
            if not s.name.endswith("_created")}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=60.0), max_size=60))
def test_spread_values_fall_in_their_buckets_and_add_up(observed):
    counts = [0] * (len(BOUNDS) + 1)
    for v in observed:
        counts[bisect_left(BOUNDS, v)] += 1
    total = math.fsum(observed)
    spread = values.spread(BOUNDS, counts, total)
    assert sorted(bisect_left(BOUNDS, v) for v in spread) == sorted(
        bisect_left(BOUNDS, v) for v in observed)
    assert math.isclose(math.fsum(spread), total, rel_tol=1e-9, abs_tol=1e-9)

    truth = Histogram("t", "t", buckets=BOUNDS, registry=CollectorRegistry())
    for v in observed:
        truth.observe(v)
    public = Histogram("t", "t", buckets=BOUNDS, registry=CollectorRegistry())
    for v in spread:
        public.observe(v)
    expected, got = samples(truth), samples(public)
    assert {k: v for k, v in got.items() if k != "t_sum"} == {
        k: v for k, v in expected.items() if k != "t_sum"}
    assert math.isclose(got["t_sum"], expected["t_sum"], rel_tol=1e-9, abs_tol=1e-9)


def test_the_direct_path_is_used_where_prometheus_client_has_the_values():
    assert values.direct()
    child = Histogram("d", "d", ["a"], buckets=(0.1, 1.0), registry=CollectorRegistry()
                      ).labels("x")
    values.add_counts(child, (0.1, 1.0), [2, 0, 1], 5.05)
    assert values.sum_of(child) == 5.05
    assert [b.get() for b in child._buckets] == [2, 0, 1]
