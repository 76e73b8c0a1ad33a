"""Bucket rows (one field per bucket) against the cumulative buckets they come from: any sum
of rows gives the percentiles and counts of the summed exporter buckets."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from promflux.bridge.analyze import bucket_fields
from promflux.bridge.analyze.quantile import normalize, quantile

BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, math.inf]
QS = [0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0]


def cumulative_of(own: list[int]) -> dict[float, float]:
    out, total = {}, 0.0
    for le, count in zip(BOUNDS, own, strict=True):
        total += count
        out[le] = total
    return out


histograms = st.lists(st.lists(st.integers(0, 50) | st.just(0), min_size=len(BOUNDS),
                               max_size=len(BOUNDS)), min_size=1, max_size=6)


@settings(max_examples=400, deadline=None)
@given(histograms)
def test_summed_rows_give_the_summed_histograms_percentiles(intervals):
    truth: dict[float, float] = {}
    rows = []
    for own in intervals:
        cumulative = cumulative_of(own)
        for le, count in cumulative.items():
            truth[le] = truth.get(le, 0.0) + count
        rows.append({"sum_" + k: v for k, v in bucket_fields.fields(cumulative).items()})
    got = bucket_fields.cumulative(rows)
    assert got[math.inf] == truth[math.inf]
    for q in QS:
        want = quantile(q, normalize(truth.items()))
        shown = quantile(q, normalize(got.items()))
        assert shown == (want if want is None else pytest.approx(want, rel=1e-12)), q


def test_a_row_keeps_the_floor_and_inner_zeros_and_drops_the_rest():
    cumulative = cumulative_of([0, 0, 0, 4, 0, 6, 0, 0, 0, 0, 0, 0])
    assert bucket_fields.fields(cumulative) == {
        "le_0.025": 0.0, "le_0.05": 4.0, "le_0.1": 0.0, "le_0.25": 6.0}
    assert bucket_fields.fields(cumulative_of([0] * 12)) == {}
    assert bucket_fields.fields(cumulative_of([3] + [0] * 10 + [2])) == {
        "le_0.005": 3.0, **{f"le_{b!r}": 0.0 for b in BOUNDS[1:-1]}, "le_+Inf": 2.0}


def test_reading_skips_other_columns_nulls_and_garbage():
    rows = [{"time": 0, "sum_le_0.5": 2, "sum_le_1.0": None, "sum_count": 7, "sum_le_x": 1,
             "sum_le_NaN": 4, "le_+Inf": 1}]
    assert bucket_fields.cumulative(rows) == {0.5: 2.0, math.inf: 3.0}
    assert bucket_fields.cumulative([]) == {math.inf: 0.0}


def test_the_statement_sums_bucket_fields_only():
    from promflux.bridge.store.influxql.buckets import select

    assert select('"raw_7d"."latency_buckets"', "time > 0", '"service"') == (
        'SELECT sum(/^le_/) FROM "raw_7d"."latency_buckets" WHERE (time > 0) AND '
        '"service" != \'\' GROUP BY "service"')
