"""Relative regressions: a window's latency and error rate against a baseline of the same
endpoint. Pure, no I/O (``jobs.baselines`` fetches the baselines).

Latency: the window's p95 is a regression when it is at least ``ratio`` times the
baseline's p95, lies beyond the baseline p95's bucket (a shift inside one bucket is
interpolation, not evidence), and the share of window requests slower than the baseline's
p95 is significantly above the baseline's own share (5 %), for the counts of both (an
exact conditional binomial test at ``alpha``: a short baseline is a sample too). Error
rate: at least ``ratio`` times the baseline's and ``min_increase`` percentage points above
it, and significantly so by the same test.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from .significance import above_baseline
from .thresholds import Threshold
from .window import Counts


@dataclass(frozen=True)
class Baseline:
    """An endpoint's usual traffic: summed counts, and where they come from."""

    counts: Counts
    source: str  # "same hour, last 7 days" or "previous hour"

    def __post_init__(self) -> None:
        # Its figures once, then the sorted buckets behind them go: kept for as long as
        # the baseline, they would cost as much memory as its counts.
        _ = self.slower_than_p95, self.p95_bucket_top
        self.counts.forget_order()

    @cached_property
    def p95_ms(self) -> float | None:
        return self.counts.percentile_ms(0.95)

    @property
    def error_rate_percent(self) -> float | None:
        return self.counts.error_rate_percent()

    @cached_property
    def p95_bucket_top(self) -> float | None:
        """The upper bound of the bucket the p95 falls in (None: the +Inf bucket)."""
        p95 = self.p95_ms
        return None if p95 is None else _bucket_top(self.counts, p95 / 1000.0)

    @cached_property
    def slower_than_p95(self) -> float:
        p95 = self.p95_ms
        return 0.0 if p95 is None else self.counts.slower_than(p95 / 1000.0)


@dataclass(frozen=True)
class Verdict:
    regressed: bool
    current: float | None
    baseline: float | None


def latency(window: Counts, base: Baseline, rule: Threshold) -> Verdict:
    base_p95 = base.p95_ms
    current = window.percentile_ms(0.95)
    if (base_p95 is None or current is None or base.counts.requests < rule.min_baseline
            or window.requests < rule.min_requests):
        return Verdict(False, current, base_p95)
    bucket_top = base.p95_bucket_top
    regressed = (current >= rule.ratio * base_p95
                 and (bucket_top is None or current > bucket_top * 1000.0)
                 and above_baseline(window.slower_than(base_p95 / 1000.0), window.requests,
                                    base.slower_than_p95,
                                    base.counts.requests, rule.alpha))
    return Verdict(regressed, current, base_p95)


def errors(window: Counts, base: Baseline, rule: Threshold) -> Verdict:
    base_rate, current = base.error_rate_percent, window.error_rate_percent()
    if (base_rate is None or current is None or base.counts.requests < rule.min_baseline
            or window.requests < rule.min_requests):
        return Verdict(False, current, base_rate)
    regressed = (current >= rule.ratio * base_rate
                 and current - base_rate >= rule.min_increase
                 and above_baseline(window.errors, window.requests, base.counts.errors,
                                    base.counts.requests, rule.alpha))
    return Verdict(regressed, current, base_rate)


def _bucket_top(counts: Counts, value_s: float) -> float | None:
    """The upper bound of the bucket ``value_s`` falls in (None: the +Inf bucket)."""
    for le, _ in counts.ordered():
        if le >= value_s:
            return None if le == float("inf") else le
    return None
