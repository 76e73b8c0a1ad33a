"""Percentile and rate math of the bridge, checked against hand-worked answers."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from promflux.bridge.analyze.quantile import normalize, quantile
from promflux.bridge.analyze.rates import CounterTracker, error_rate_percent, per_minute

INF = math.inf


def test_interpolates_inside_the_bucket():
    # 100 observations: 50 <= 0.1, 40 in (0.1, 0.5], 10 in (0.5, 1].
    buckets = [(0.1, 50), (0.5, 90), (1.0, 100), (INF, 100)]
    assert quantile(0.5, buckets) == pytest.approx(0.1)
    assert quantile(0.9, buckets) == pytest.approx(0.5)
    assert quantile(0.95, buckets) == pytest.approx(0.75)
    assert quantile(0.7, buckets) == pytest.approx(0.1 + 0.4 * 20 / 40)
    assert quantile(0.25, buckets) == pytest.approx(0.05)  # first bucket starts at 0


def test_rank_in_the_inf_bucket_answers_the_highest_finite_bound():
    assert quantile(0.99, [(0.5, 10), (1.0, 20), (INF, 100)]) == 1.0


def test_first_bucket_with_negative_bound_answers_its_bound():
    assert quantile(0.5, [(-1.0, 10), (0.0, 10), (INF, 10)]) == -1.0


@pytest.mark.parametrize("buckets", [
    [],                                  # nothing
    [(INF, 10)],                         # fewer than two buckets
    [(0.1, 5), (1.0, 10)],               # no +Inf bucket
    [(0.1, 0), (1.0, 0), (INF, 0)],      # no observations
])
def test_no_answer_instead_of_nan(buckets):
    assert quantile(0.95, buckets) is None


def test_out_of_range_q():
    buckets = [(0.1, 1), (INF, 1)]
    assert quantile(-0.1, buckets) == -INF and quantile(1.5, buckets) == INF
    assert quantile(math.nan, buckets) is None


def test_normalize_merges_sorts_and_repairs():
    assert normalize([(INF, 10), (float("1"), 4), (float("1.0"), 3), (0.5, 8)]) == [
        (0.5, 8), (1.0, 8), (INF, 10)]


@given(st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=200),
       st.sampled_from([0.5, 0.9, 0.95, 0.99]))
def test_quantile_lies_within_the_bucket_holding_the_true_rank(values, q):
    bounds = [0.1, 0.5, 1, 5, 10, 50, INF]
    buckets = [(b, sum(1 for v in values if v <= b)) for b in bounds]
    answer = quantile(q, buckets)
    assert answer is not None and not math.isnan(answer)
    ordered = sorted(values)
    true = ordered[max(0, math.ceil(q * len(values)) - 1)]
    upper = next(b for b in bounds if true <= b)
    lower = max([0] + [b for b in bounds if b < upper])
    if math.isinf(upper):
        assert answer == 50
    else:
        assert lower - 1e-9 <= answer <= upper + 1e-9


def test_first_scrape_is_a_baseline_and_resets_count_per_series():
    tracker = CounterTracker()
    assert tracker.update(100.0, {"a": 500.0, "b": 7.0}) == ({}, None)
    assert tracker.update(115.0, {"a": 530.0, "b": 7.0, "c": 4.0}) == (
        {"a": 30.0, "b": 0.0, "c": 4.0}, 15.0)
    # 'a' went down: it restarted and its new value is its increase; 'b' rose by 2.
    increases, seconds = tracker.update(130.0, {"a": 12.0, "b": 9.0, "c": 1.0})
    assert increases == {"a": 12.0, "b": 2.0, "c": 1.0} and seconds == 15.0
    assert tracker.restarts == 1
    # A restart seen through the start time: every series counts from zero.
    assert tracker.update(145.0, {"a": 20.0, "b": 10.0}, restarted=True)[0] == {
        "a": 20.0, "b": 10.0}
    assert tracker.update(160.0, {"a": 26.0})[0] == {"a": 6.0}


def test_a_series_absent_for_a_while_counts_only_what_it_gained():
    tracker = CounterTracker(stale_after=60.0)
    tracker.update(0.0, {"a": 1000.0, "b": 1.0})
    assert tracker.update(15.0, {"b": 2.0})[0] == {"b": 1.0}  # 'a' missing once
    assert tracker.update(30.0, {"a": 1005.0, "b": 3.0})[0] == {"a": 5.0, "b": 1.0}
    # Gone longer than stale_after: forgotten, and counted from zero when it returns.
    tracker.update(45.0, {"b": 4.0})
    for t in range(60, 200, 15):
        tracker.update(float(t), {"b": 4.0})
    assert len(tracker) == 1
    assert tracker.update(200.0, {"a": 1010.0, "b": 4.0})[0] == {"a": 1010.0, "b": 0.0}


def test_values_no_counter_can_have_are_skipped():
    tracker = CounterTracker()
    tracker.update(0.0, {"a": 10.0, "b": 5.0, "c": 1.0})
    increases, _ = tracker.update(15.0, {"a": -3.0, "b": math.inf, "c": math.nan})
    assert increases == {} and tracker.restarts == 0
    # The last good values stay the baseline.
    assert tracker.update(30.0, {"a": 12.0, "b": 6.0, "c": 2.0})[0] == {
        "a": 2.0, "b": 1.0, "c": 1.0}


@given(st.lists(st.one_of(st.floats(), st.none()), min_size=2, max_size=40))
def test_increases_are_finite_non_negative_and_add_up(values):
    # None: the series is missing from that scrape.
    tracker = CounterTracker()
    total = 0.0
    for i, value in enumerate(values):
        increases, _ = tracker.update(float(i), {} if value is None else {"k": value})
        assert all(0.0 <= v < math.inf for v in increases.values())
        total += sum(increases.values())
    good = [v for v in values if v is not None and 0.0 <= v < math.inf]
    if good and all(b >= a for a, b in zip(good, good[1:], strict=False)):
        # A counter that never went down: increases add up to its last value minus the
        # baseline (the first scrape's value; zero when it appeared later).
        baseline = values[0] if values[0] is not None and 0.0 <= values[0] < math.inf else 0.0
        assert math.isclose(total, good[-1] - baseline, rel_tol=1e-9, abs_tol=1e-6)


def test_rates():
    assert per_minute(30, 15) == 120 and per_minute(5, 0) is None
    assert error_rate_percent(3, 60) == 5 and error_rate_percent(0, 0) is None


def test_nan_counter_values_are_skipped_not_a_restart():
    tracker = CounterTracker()
    tracker.update(0.0, {"a": 1.0, "b": 5.0})
    increases, _ = tracker.update(15.0, {"a": math.nan, "b": 6.0})
    assert increases == {"b": 1.0} and tracker.restarts == 0


def test_churning_series_are_bounded_and_pruned_in_linear_time():
    import time

    tracker = CounterTracker(max_absent=5_000)
    start = time.process_time()
    for scrape in range(30):  # 10,000 new series every scrape, none ever seen again
        tracker.update(float(scrape), {f"s{scrape}-{i}": 1.0 for i in range(10_000)})
        assert len(tracker) <= 10_000 + 5_000
    assert len(tracker) <= 2 * 10_000 + 1024  # about one scrape's worth kept absent
    # 300,000 series went through: linear work is a fraction of a second here; the
    # quadratic pruning this replaces took minutes.
    assert time.process_time() - start < 20
