"""Thresholds and their levels. Pure, no I/O.

The seed's limits are the warning levels: p95 response time 500 ms, error rate 5 %, CPU
80 %, memory 80 %, disk 90 %, and (for services marked active) at least 10 requests per
minute. Critical levels sit beyond them. A value exactly at a limit is still ok: the seed
says "< 500 ms", so 500 ms is the first value that is not.

Each figure is judged over a sliding window (``window_seconds``); a worse level must hold
for ``for_seconds`` before the state changes, and a better one for ``resolve_seconds``.
The defaults keep steady noisy traffic silent and still report a real problem within five
minutes (docs/alerts.md has the reasoning and docs/performance.md the measured delays).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

Level = Literal["ok", "warning", "critical", "regression"]
SEVERITY: dict[str, int] = {"ok": 0, "regression": 1, "warning": 1, "critical": 2}

WINDOW_S = 300.0
FOR_S = 60.0
RESOLVE_S = 180.0
FAST_S = 120.0  # the short window of the ratio figures (two fifths of the default window)
ALPHA = 0.0001
REGRESSIONS = ("p95_regression", "error_rate_regression")


@dataclass(frozen=True)
class Threshold:
    """Limits for one figure. ``above``: a value above the limit is bad (else below)."""

    metric: str
    warning: float
    critical: float
    above: bool = True
    for_seconds: float = 0.0   # a breach must last this long before the state changes
    active_only: bool = False  # only for services marked active (throughput)
    window_seconds: float = WINDOW_S
    resolve_seconds: float = 0.0  # a better level must last this long
    min_requests: float = 0.0  # per window, for ratio figures
    alpha: float = ALPHA  # significance a ratio breach needs (1.0: none)
    # Ratio figures: a critical breach this window shows (significant as above) is
    # critical at once, without ``for_seconds``: a burst is reported while it lasts. 0: off.
    fast_window_seconds: float = 0.0
    # Regression rules only: how far above the baseline, at least, counts.
    ratio: float = 1.5
    min_increase: float = 0.0  # percentage points (error rate)
    min_baseline: float = 100.0  # requests the baseline needs

    def bound(self, level: str) -> float | None:
        """The limit crossed into ``level`` (None for ok)."""
        return {"warning": self.warning, "critical": self.critical}.get(level)

    def level(self, value: float | None) -> Level:
        """The level of ``value``; None (no data) is ok."""
        if value is None or value != value:
            return "ok"
        if self.above:
            if value >= self.critical:
                return "critical"
            return "warning" if value >= self.warning else "ok"
        if value <= self.critical:
            return "critical"
        return "warning" if value < self.warning else "ok"

    def as_json(self) -> dict[str, float | bool]:
        return {"warning": self.warning, "critical": self.critical, "above": self.above,
                "window": self.window_seconds, "for": self.for_seconds,
                "resolve": self.resolve_seconds, "min_requests": self.min_requests,
                **({"ratio": self.ratio, "min_increase": self.min_increase}
                   if self.metric in REGRESSIONS else {})}


def _limit(metric: str, warning: float, critical: float, above: bool = True,
           active_only: bool = False, min_requests: float = 0.0) -> Threshold:
    return Threshold(metric, warning, critical, above=above, for_seconds=FOR_S,
                     active_only=active_only, resolve_seconds=RESOLVE_S,
                     min_requests=min_requests,
                     fast_window_seconds=FAST_S if min_requests else 0.0)


DEFAULTS: dict[str, Threshold] = {
    t.metric: t for t in (
        _limit("p95_ms", 500.0, 1000.0, min_requests=20),
        _limit("error_rate_percent", 5.0, 10.0, min_requests=20),
        _limit("cpu_percent", 80.0, 95.0),
        _limit("memory_percent", 80.0, 95.0),
        _limit("disk_percent", 90.0, 95.0),
        _limit("requests_per_minute", 10.0, 1.0, above=False, active_only=True),
        # Jobs run far less often than requests: a few runs decide, at a looser level.
        dataclasses.replace(_limit("job_failure_percent", 10.0, 50.0, min_requests=3),
                            alpha=0.01),
    )
}
JOB_PREFIX = "job:"  # the "endpoint" of a job's states: "job:sync_devices"


REGRESSION_DEFAULTS: dict[str, Threshold] = {
    "p95_regression": Threshold("p95_regression", 0.0, 0.0, for_seconds=FOR_S,
                                resolve_seconds=RESOLVE_S, min_requests=20, alpha=0.001),
    "error_rate_regression": Threshold("error_rate_regression", 0.0, 0.0, for_seconds=FOR_S,
                                       resolve_seconds=RESOLVE_S, min_requests=20,
                                       alpha=0.001, min_increase=1.0),
}


def worst(levels: list[Level] | tuple[Level, ...]) -> Level:
    """The most severe of ``levels`` (ok for none); a breached limit before a regression
    of the same severity."""
    return max(levels, key=lambda level: (SEVERITY[level], level != "regression"),
               default="ok")
