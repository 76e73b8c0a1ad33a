"""Thresholds and their levels. Pure, no I/O.

The seed's limits are the warning levels: p95 response time 500 ms, error rate 5 %, CPU
80 %, memory 80 %, disk 90 %, and (for services marked active) at least 10 requests per
minute. Critical levels sit beyond them. A value exactly at a limit is still ok: the seed
says "< 500 ms", so 500 ms is the first value that is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Level = Literal["ok", "warning", "critical"]
SEVERITY: dict[str, int] = {"ok": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True)
class Threshold:
    """Limits for one figure. ``above``: a value above the limit is bad (else below)."""

    metric: str
    warning: float
    critical: float
    above: bool = True
    for_seconds: float = 0.0   # a breach must last this long before the state changes
    active_only: bool = False  # only for services marked active (throughput)

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


DEFAULTS: dict[str, Threshold] = {
    t.metric: t for t in (
        Threshold("p95_ms", 500.0, 1000.0),
        Threshold("error_rate_percent", 5.0, 10.0),
        Threshold("cpu_percent", 80.0, 95.0),
        Threshold("memory_percent", 80.0, 95.0),
        Threshold("disk_percent", 90.0, 95.0),
        Threshold("requests_per_minute", 10.0, 1.0, above=False, active_only=True),
    )
}


def worst(levels: list[Level] | tuple[Level, ...]) -> Level:
    """The most severe of ``levels`` (ok for none)."""
    return max(levels, key=SEVERITY.__getitem__, default="ok")
