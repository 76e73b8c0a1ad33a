"""Retention policies and continuous queries for the hourly and daily roll-ups. Pure:
InfluxQL text only (``influx.InfluxClient.setup`` runs it).

Every roll-up names its fields with AS (``mean(*)`` would rename them) and groups by
``*`` (or the tags would become fields). Counts and sums roll up as sums, so means and
percentiles stay exact: hourly mean = sum(latency_sum_ms) / sum(requests); hourly
percentiles come from the summed ``latency_buckets`` (REFERENCE.md, section 4).
"""

from __future__ import annotations

from dataclasses import dataclass

RAW, HOURLY, DAILY = "raw_7d", "hourly_30d", "daily_90d"


@dataclass(frozen=True)
class Rollup:
    measurement: str
    select: str  # the aggregate list, every field named with AS


def _sum(*fields: str) -> list[str]:
    return [f'sum("{f}") AS "{f}"' for f in fields]


def _mean_max(*fields: str) -> list[str]:
    out = []
    for f in fields:
        out += [f'mean("{f}") AS "{f}"', f'max("{f}") AS "{f}_max"']
    return out


def _daily_mean_max(*fields: str) -> list[str]:
    # Daily from hourly: the mean of equal-length hourly means, the max of hourly maxima.
    out = []
    for f in fields:
        out += [f'mean("{f}") AS "{f}"', f'max("{f}_max") AS "{f}_max"']
    return out


HOURLY_ROLLUPS: tuple[Rollup, ...] = (
    Rollup("performance_metrics", ", ".join(
        _sum("requests", "errors", "client_errors", "latency_sum_ms")
        + ['mean("requests_per_minute") AS "requests_per_minute"',
           'max("requests_per_minute") AS "requests_per_minute_max"'])),
    Rollup("latency_buckets", ", ".join(_sum("count"))),
    Rollup("status_codes", ", ".join(_sum("requests"))),
    Rollup("exceptions", ", ".join(_sum("exceptions"))),
    Rollup("events", ", ".join(
        _sum("events") + ['max("events_per_minute") AS "events_per_minute_max"'])),
    Rollup("resources", ", ".join(
        _mean_max("cpu_percent", "memory_mb", "memory_percent", "threads", "open_fds"))),
    Rollup("system", ", ".join(_mean_max("cpu_percent", "memory_percent"))),
    Rollup("disk", ", ".join(_mean_max("used_percent"))),
    Rollup("queues", ", ".join(_mean_max("size") + _sum("wait_count"))),
    Rollup("connections", ", ".join(
        _mean_max("websocket_active", "http_in_progress")
        + _sum("websocket_opened", "websocket_messages_received", "websocket_messages_sent"))),
)

DAILY_ROLLUPS: tuple[Rollup, ...] = (
    Rollup("performance_metrics", ", ".join(
        _sum("requests", "errors", "client_errors", "latency_sum_ms")
        + ['mean("requests_per_minute") AS "requests_per_minute"',
           'max("requests_per_minute_max") AS "requests_per_minute_max"'])),
    Rollup("latency_buckets", ", ".join(_sum("count"))),
    Rollup("status_codes", ", ".join(_sum("requests"))),
    Rollup("exceptions", ", ".join(_sum("exceptions"))),
    Rollup("events", ", ".join(
        _sum("events") + ['max("events_per_minute_max") AS "events_per_minute_max"'])),
    Rollup("resources", ", ".join(
        _daily_mean_max("cpu_percent", "memory_mb", "memory_percent", "threads", "open_fds"))),
    Rollup("system", ", ".join(_daily_mean_max("cpu_percent", "memory_percent"))),
    Rollup("disk", ", ".join(_daily_mean_max("used_percent"))),
    Rollup("queues", ", ".join(_daily_mean_max("size") + _sum("wait_count"))),
    Rollup("connections", ", ".join(
        _daily_mean_max("websocket_active", "http_in_progress")
        + _sum("websocket_opened", "websocket_messages_received", "websocket_messages_sent"))),
)


def quote(name: str) -> str:
    """An InfluxQL identifier."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _duration(seconds: float) -> str:
    return f"{int(seconds)}s"


def policies(raw: float, hourly: float, daily: float) -> list[tuple[str, float, bool]]:
    """(name, duration seconds, default) for each retention policy."""
    return [(RAW, raw, True), (HOURLY, hourly, False), (DAILY, daily, False)]


def create_policy(database: str, name: str, seconds: float, default: bool) -> str:
    return (f"CREATE RETENTION POLICY {quote(name)} ON {quote(database)} "
            f"DURATION {_duration(seconds)} REPLICATION 1{' DEFAULT' if default else ''}")


def alter_policy(database: str, name: str, seconds: float, default: bool) -> str:
    return (f"ALTER RETENTION POLICY {quote(name)} ON {quote(database)} "
            f"DURATION {_duration(seconds)}{' DEFAULT' if default else ''}")


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
