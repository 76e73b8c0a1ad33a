"""Trends from synthetic histories whose answers are known in advance."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from promflux.bridge.analyze.trends import DAY, HOUR, WEEK, Period, slope_per_day, trend_fields

T0 = 1_800_000_000 - 1_800_000_000 % WEEK  # a Thursday 00:00 UTC


def hourly(values: dict[int, float], requests: float = 600.0, errors: float = 6.0):
    return {t: Period(t, p95, requests, requests / 60, errors) for t, p95 in values.items()}


def test_linear_rise_gives_the_slope_and_the_point_counts():
    # p95 rises by 2 ms per hour over 30 days: 48 ms per day.
    history = hourly({T0 + h * HOUR: 100.0 + 2.0 * h for h in range(30 * 24)})
    now = T0 + (30 * 24 - 1) * HOUR
    fields = trend_fields(history[now], history, "hour")
    assert fields["p95_ms_slope_7d_per_day"] == pytest.approx(48.0)
    assert fields["p95_ms_slope_30d_per_day"] == pytest.approx(48.0)
    assert fields["p95_ms_slope_7d_points"] == 7 * 24
    assert fields["p95_ms_slope_30d_points"] == 30 * 24
    assert fields["p95_change_prev_percent"] == pytest.approx(100 * 2 / (history[now].p95_ms - 2))
    week_ago = history[now - WEEK].p95_ms
    assert fields["p95_change_week_percent"] == pytest.approx(100 * (7 * 48) / week_ago)
    assert fields["requests_per_minute_slope_7d_per_day"] == pytest.approx(0.0)
    assert fields["error_rate_change_prev_points"] == 0.0


def test_weekly_pattern_is_flat_week_over_week_but_not_against_the_day_before():
    # Weekdays 100 ms, weekends 300 ms, for three weeks of days.
    days = {T0 + d * DAY: Period(T0 + d * DAY, 300.0 if (d % 7) in (2, 3) else 100.0,
                                 1000.0, 1000 / 1440, 0.0) for d in range(21)}
    saturday = T0 + 16 * DAY  # T0 is a Thursday, so d % 7 == 2 is a Saturday
    fields = trend_fields(days[saturday], days, "day")
    assert fields["p95_change_week_percent"] == 0.0
    assert fields["p95_change_prev_percent"] == pytest.approx(200.0)
    # Baseline: the 7 days before hold 2 weekend days and 5 weekdays.
    assert fields["p95_change_baseline_percent"] == pytest.approx(100 * (300 - 1100 / 7)
                                                                  / (1100 / 7))


def test_step_change_against_the_same_hour_baseline():
    # 100 ms at 14:00 every day for a week, then 250 ms today at 14:00; other hours 50 ms.
    values = {T0 + h * HOUR: (100.0 if h % 24 == 14 else 50.0) for h in range(8 * 24)}
    today = T0 + 7 * DAY + 14 * HOUR
    values[today] = 250.0
    history = hourly(values)
    fields = trend_fields(history[today], history, "hour")
    assert fields["p95_change_baseline_percent"] == pytest.approx(150.0)
    assert fields["p95_change_prev_percent"] == pytest.approx(400.0)  # 13:00 was 50


def test_gaps_are_left_out_not_zero():
    history = hourly({T0: 100.0, T0 + 5 * HOUR: 200.0})
    now = T0 + 5 * HOUR
    fields = trend_fields(history[now], history, "hour")
    assert "p95_change_prev_percent" not in fields  # 04:00 is missing
    assert "p95_change_week_percent" not in fields
    assert fields["p95_ms_slope_7d_points"] == 2
    assert fields["p95_ms_slope_7d_per_day"] == pytest.approx(100 / 5 * 24)
    lonely = {now: Period(now, None, 0.0, 0.0, 0.0)}
    alone = trend_fields(lonely[now], lonely, "hour")
    assert "p95_ms" not in alone and "error_rate_percent" not in alone
    assert alone["p95_ms_slope_7d_points"] == 0 and alone["requests"] == 0


def test_error_rate_changes_in_points_and_zero_references_give_no_percent():
    history = {T0: Period(T0, 100.0, 100.0, 0.0, 1.0),
               T0 + HOUR: Period(T0 + HOUR, 100.0, 100.0, 5.0, 4.0)}
    fields = trend_fields(history[T0 + HOUR], history, "hour")
    assert fields["error_rate_change_prev_points"] == pytest.approx(3.0)
    assert "requests_change_prev_percent" not in fields  # from 0 requests per minute


@given(st.lists(st.tuples(st.integers(0, 1000), st.floats(-1e6, 1e6)), min_size=2,
                max_size=50, unique_by=lambda p: p[0]),
       st.floats(-100, 100), st.floats(-1e3, 1e3))
def test_slope_is_exact_on_lines_and_finite(points, a, b):
    line = [(t * 600, a * t * 600 / DAY + b) for t, _ in points]
    assert slope_per_day(line) == pytest.approx(a, abs=1e-6)
    noisy = [(t * 600, v) for t, v in points]
    assert math.isfinite(slope_per_day(noisy))
