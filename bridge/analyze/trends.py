"""Trend figures of one hour or day against the periods before it. Pure, no I/O.

For each service, endpoint and method (``trends_job`` supplies the roll-up rows):
- change against the previous period, against the same period a week earlier (week over
  week), and against a 7-day baseline: the mean of the same hour on the 7 days before (for
  hours) or of the 7 days before (for days);
- least-squares slopes over the last 7 and 30 days, per day, with the number of points
  behind each (a slope needs two).

Percent changes are left out when the reference is zero or missing; error-rate changes are in
percentage points, since a rate going from 0 % to 1 % has no meaningful percent change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

HOUR, DAY, WEEK = 3600, 86400, 7 * 86400
PERIODS = {"hour": HOUR, "day": DAY}


@dataclass(frozen=True)
class Period:
    """Roll-up figures of one period (start in seconds)."""

    start: int
    p95_ms: float | None
    requests: float
    requests_per_minute: float | None
    errors: float

    @property
    def error_rate_percent(self) -> float | None:
        return 100.0 * self.errors / self.requests if self.requests > 0 else None

    def figure(self, name: str) -> float | None:
        value: float | None = getattr(self, name)
        return value


FIGURES = ("p95_ms", "requests_per_minute", "error_rate_percent")
_SHORT = {"p95_ms": "p95", "requests_per_minute": "requests", "error_rate_percent": "error_rate"}


def percent_change(current: float | None, reference: float | None) -> float | None:
    if current is None or reference is None or reference == 0:
        return None
    return 100.0 * (current - reference) / reference


def slope_per_day(points: list[tuple[int, float]]) -> float | None:
    """Least-squares slope of (seconds, value) points, in value per day; None below 2 points
    or when all points share one time."""
    n = len(points)
    if n < 2:
        return None
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return None
    cov = sum((t - mean_t) * (v - mean_v) for t, v in points)
    return cov / var * DAY


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def trend_fields(current: Period, history: Mapping[int, Period], period: str) -> dict[str, float]:
    """Fields of a ``performance_trends`` point for ``current``; ``history`` maps period
    starts to periods (at least the 30 days before ``current``; extra ones are ignored)."""
    length = PERIODS[period]
    fields: dict[str, float] = {"requests": current.requests}
    previous = history.get(current.start - length)
    week_ago = history.get(current.start - WEEK)
    baseline_starts = [current.start - k * DAY for k in range(1, 8)]
    for name in FIGURES:
        short = _SHORT[name]
        value = current.figure(name)
        if value is not None:
            fields[name] = value
        baseline = _mean([v for s in baseline_starts
                          if (p := history.get(s)) is not None
                          and (v := p.figure(name)) is not None])
        references = {"prev": previous.figure(name) if previous else None,
                      "week": week_ago.figure(name) if week_ago else None,
                      "baseline": baseline}
        for label, reference in references.items():
            if name == "error_rate_percent":
                if value is not None and reference is not None:
                    fields[f"{short}_change_{label}_points"] = value - reference
            else:
                change = percent_change(value, reference)
                if change is not None:
                    fields[f"{short}_change_{label}_percent"] = change
        for days in (7, 30):
            since = current.start - days * DAY
            points = [(p.start, v) for p in (*history.values(), current)
                      if since < p.start <= current.start and (v := p.figure(name)) is not None]
            points = sorted(set(points))
            fields[f"{name}_slope_{days}d_points"] = float(len(points))
            slope = slope_per_day(points)
            if slope is not None:
                fields[f"{name}_slope_{days}d_per_day"] = slope
    return fields
