"""Is a share of requests significantly above an expected share? Pure, no I/O.

A window of n requests with k slow (or failed) ones, against a limit or baseline share p:
the one-sided binomial tail P(X >= k | n, p). A small tail means the excess is not the
noise of a small sample. Exact (summed in log space), so it is right for 5 requests and
for 5 million.
"""

from __future__ import annotations

import math
from collections.abc import Callable


def binomial_tail(k: float, n: float, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p); counts are rounded to whole requests."""
    n_i, k_i = round(n), math.ceil(k - 1e-9)
    if k_i <= 0:
        return 1.0
    if k_i > n_i or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    log_n = math.lgamma(n_i + 1)

    def log_pmf(i: int) -> float:
        return (log_n - math.lgamma(i + 1) - math.lgamma(n_i - i + 1)
                + i * log_p + (n_i - i) * log_q)

    # Terms fall away fast beyond the mode; sum from the larger of k and the mode outward.
    mode = math.floor((n_i + 1) * p)
    if k_i <= mode:
        return 1.0 - _sum_down(log_pmf, k_i - 1)
    return _sum_up(log_pmf, k_i, n_i)


def _sum_up(log_pmf: Callable[[int], float], start: int, stop: int) -> float:
    first = log_pmf(start)
    total = 0.0
    for i in range(start, stop + 1):
        term = math.exp(log_pmf(i) - first)
        total += term
        if term < 1e-17 * total:
            break
    return min(1.0, math.exp(first) * total)


def _sum_down(log_pmf: Callable[[int], float], start: int) -> float:
    """P(X <= start), for start below the mode (the lower tail, summed downward)."""
    first = log_pmf(start)
    total = 0.0
    for i in range(start, -1, -1):
        term = math.exp(log_pmf(i) - first)
        total += term
        if term < 1e-17 * total:
            break
    return min(1.0, math.exp(first) * total)


def above_baseline(k: float, n: float, k_base: float, n_base: float, alpha: float) -> bool:
    """Whether k of n is significantly more often than k_base of n_base. Both are samples:
    given the k + k_base events together, each falls in the window with probability
    n / (n + n_base) when the two shares are the same (an exact conditional test), so a
    baseline of a few hundred requests is not taken for more than it knows."""
    if n <= 0 or n_base <= 0 or k * n_base <= k_base * n:
        return False
    return binomial_tail(k, k + k_base, n / (n + n_base)) < alpha


def significant(k: float, n: float, p: float, alpha: float) -> bool:
    """Whether k of n is significantly more than the share p (at level alpha)."""
    if alpha >= 1.0:
        return True
    return k > n * p and binomial_tail(k, n, p) < alpha
