"""Whether the bridge does its job, as /healthz reports it. Pure.

"ok" while points reach InfluxDB and some target answers; "degraded" with the reasons
when writes have failed for longer than the configured time, or every target that has
been scraped failed its last scrape. /healthz answers 503 when degraded, so compose and
Kubernetes probes see it (README, "Health").
"""

from __future__ import annotations


def problems(write_failing_s: float | None, unhealthy_after_s: float, last_write_error: str,
             scraped: int, up: int) -> list[str]:
    """Why the bridge is degraded (empty: healthy). ``scraped``: the targets scraped at
    least once; ``up``: those whose last scrape worked."""
    out = []
    if write_failing_s is not None and write_failing_s >= unhealthy_after_s:
        out.append(f"InfluxDB has not taken a write for {write_failing_s:.0f} s "
                   f"(last error: {last_write_error or 'unknown'})")
    if scraped and not up:
        out.append(f"no target is up: all {scraped} failed their last scrape")
    return out
