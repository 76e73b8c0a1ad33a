"""Retention policies and continuous queries for the hourly and daily roll-ups. Pure:
InfluxQL text only (``influx.InfluxClient.setup`` runs it).

Every roll-up names its fields with AS (``mean(*)`` would rename them) and groups by
``*`` (or the tags would become fields). Counts and sums roll up as sums, so means and
percentiles stay exact: hourly mean = sum(latency_sum_ms) / sum(requests). Bucket rows
(one field per bucket) are summed by the roll-up job instead, which keeps their field
names, and hourly percentiles come from those sums (docs/algorithms.md).
"""

from __future__ import annotations

from dataclasses import dataclass

RAW, HOURLY, DAILY = "raw_7d", "hourly_30d", "daily_90d"


@dataclass(frozen=True)
class Rollup:
    measurement: str
    select: str  # the aggregate list, every field named with AS


# measurement -> (fields summed, gauges kept as mean and max, rates kept as mean and peak)
_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "performance_metrics": (("requests", "errors", "client_errors", "latency_sum_ms",
                             "requests_within_limit"), (), ("requests_per_minute",)),
    "status_codes": (("requests",), (), ()),
    "exceptions": (("exceptions",), (), ()),
    "events": (("events",), (), ("events_per_minute",)),
    "resources": ((), ("cpu_percent", "memory_mb", "memory_percent", "threads", "open_fds"),
                  ()),
    "system": ((), ("cpu_percent", "memory_percent", "memory_limit_mb", "cpu_limit_cores",
                    "cores"), ()),
    "disk": ((), ("used_percent",), ()),
    "queues": (("wait_count",), ("size",), ()),
    "connections": (("websocket_opened", "websocket_messages_received",
                     "websocket_messages_sent"), ("websocket_active", "http_in_progress"), ()),
    "client_requests": (("duration_count",), (), ("duration_per_minute",)),
    "jobs": (("runs", "failures", "cancelled", "duration_sum_ms"),
             ("in_progress", "seconds_since_success"), ("runs_per_minute",)),
    "job_failures": (("failures",), (), ("failures_per_minute",)),
    "websocket_messages": (("handling_count",), (), ("handling_per_minute",)),
    "websocket_closes": (("closes",), (), ("closes_per_minute",)),
    "websocket_errors": (("errors",), (), ("errors_per_minute",)),
}


def _rollups(from_hourly: bool) -> tuple[Rollup, ...]:
    """Hourly roll-ups read raw points; daily ones read hourly points, whose maxima are
    already in ``<field>_max`` (the max of hourly maxima is the daily maximum)."""
    out = []
    for measurement, (sums, gauges, rates) in _FIELDS.items():
        parts = [f'sum("{f}") AS "{f}"' for f in sums]
        for f in (*gauges, *rates):
            peak = f"{f}_max" if from_hourly else f
            parts.append(f'mean("{f}") AS "{f}"')
            parts.append(f'max("{peak}") AS "{f}_max"')
        out.append(Rollup(measurement, ", ".join(parts)))
    return tuple(out)


HOURLY_ROLLUPS = _rollups(from_hourly=False)
DAILY_ROLLUPS = _rollups(from_hourly=True)


def quote(name: str) -> str:
    """An InfluxQL identifier."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _duration(seconds: float) -> str:
    return f"{int(seconds)}s"


def policies(raw: float, hourly: float, daily: float) -> list[tuple[str, float, bool]]:
    """(name, duration seconds, default) for each retention policy."""
    return [(RAW, raw, True), (HOURLY, hourly, False), (DAILY, daily, False)]


def create_policy(database: str, name: str, seconds: float, default: bool,
                  replication: int = 1) -> str:
    return (f"CREATE RETENTION POLICY {quote(name)} ON {quote(database)} "
            f"DURATION {_duration(seconds)} REPLICATION {int(replication)}"
            f"{' DEFAULT' if default else ''}")


def alter_policy(database: str, name: str, seconds: float, default: bool,
                 replication: int = 1) -> str:
    return (f"ALTER RETENTION POLICY {quote(name)} ON {quote(database)} "
            f"DURATION {_duration(seconds)} REPLICATION {int(replication)}"
            f"{' DEFAULT' if default else ''}")


def select_rows(database: str, rollup: Rollup, source_rp: str, interval: str,
                where: str) -> str:
    """The roll-up as a plain SELECT whose rows the bridge writes itself: for servers
    without continuous queries or SELECT ... INTO (2.x and Cloud's 1.x API)."""
    return (f"SELECT {rollup.select} FROM {quote(database)}.{quote(source_rp)}."
            f"{quote(rollup.measurement)} WHERE {where} GROUP BY time({interval}), *")


def select_into(database: str, rollup: Rollup, source_rp: str, target_rp: str,
                interval: str, where: str = "") -> str:
    """The roll-up as a SELECT ... INTO (a CQ's body; also run by hand to backfill)."""
    return (f"SELECT {rollup.select} INTO {quote(database)}.{quote(target_rp)}."
            f"{quote(rollup.measurement)} FROM {quote(database)}.{quote(source_rp)}."
            f"{quote(rollup.measurement)}{(' WHERE ' + where) if where else ''} "
            f"GROUP BY time({interval}), *")


def continuous_queries(database: str) -> dict[str, str]:
    """CQ name -> CREATE CONTINUOUS QUERY statement, hourly from raw, daily from hourly."""
    out = {}
    for rollups, source, target, interval, resample in (
            (HOURLY_ROLLUPS, RAW, HOURLY, "1h", "RESAMPLE EVERY 10m FOR 2h"),
            (DAILY_ROLLUPS, HOURLY, DAILY, "1d", "RESAMPLE EVERY 1h FOR 2d")):
        for rollup in rollups:
            name = f"promflux_{target}_{rollup.measurement}"
            body = select_into(database, rollup, source, target, interval)
            out[name] = (f"CREATE CONTINUOUS QUERY {quote(name)} ON {quote(database)} "
                         f"{resample} BEGIN {body} END")
    return out
