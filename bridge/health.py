"""Whether the bridge does its job, as /healthz reports it. Pure.

"ok" while points reach InfluxDB and some target answers; "degraded" with the reasons
when writes have failed for longer than the configured time, or every target that has
been scraped failed its last scrape. /healthz answers 503 when degraded, so compose and
Kubernetes probes see it (README, "Health").
"""

from __future__ import annotations

from collections.abc import Iterable


def problems(write_failing_s: float | None, unhealthy_after_s: float, last_write_error: str,
             targets_up: Iterable[bool | None]) -> list[str]:
    """Why the bridge is degraded (empty: healthy). ``targets_up`` has one entry per
    target: its last scrape's outcome, None before its first scrape."""
    out = []
    if write_failing_s is not None and write_failing_s >= unhealthy_after_s:
        out.append(f"InfluxDB has not taken a write for {write_failing_s:.0f} s "
                   f"(last error: {last_write_error or 'unknown'})")
    scraped = [up for up in targets_up if up is not None]
    if scraped and not any(scraped):
        out.append(f"no target is up: all {len(scraped)} failed their last scrape")
    return out
