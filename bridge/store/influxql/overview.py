"""The status page's one request: the last hour of each service, the last day's state
changes, and the last 5 minutes per endpoint and job, by statement name. epoch=ms."""

from __future__ import annotations

from typing import Any

from ...analyze import schema
from .buckets import select

ALL = schema.ALL
# The "current" error rate and throughput are over the last 5 minutes (a single 15 s
# interval is too jumpy); p95 is the last interval's.
STATEMENTS: dict[str, str] = {
    "services": (
        f'SELECT "p95_ms", "requests_per_minute", "requests", "errors", "client_errors" '
        f'FROM "{schema.PERFORMANCE}" '
        f"WHERE \"endpoint\" = '{ALL}' AND time > now() - 1h GROUP BY \"service\""),
    "resources": (
        f'SELECT "cpu_percent", "memory_mb", "memory_percent" FROM "{schema.RESOURCES}" '
        f'WHERE time > now() - 1h GROUP BY "service", "pid"'),
    "disks": (
        f'SELECT last("used_percent") FROM "{schema.DISK}" WHERE time > now() - 1h '
        f'GROUP BY "service"'),
    "changes": (
        f'SELECT "level", "previous", "value", "service", "endpoint", "metric" FROM '
        f'"{schema.STATES}" WHERE time > now() - 24h ORDER BY time DESC LIMIT 10'),
    # Per endpoint over the last 5 minutes: summed counts, and the summed buckets that the
    # exact p95 of those minutes comes from.
    "endpoint_counts": (
        f'SELECT sum("requests") AS "requests", sum("errors") AS "errors", '
        f'sum("client_errors") AS "client_errors", sum("requests_within_limit") AS "within" '
        f"FROM \"{schema.PERFORMANCE}\" WHERE \"endpoint\" != '{ALL}' "
        f'AND time > now() - 5m GROUP BY "service", "endpoint", "method"'),
    "endpoint_buckets": select(f'"{schema.LATENCY_BUCKETS}"', "time > now() - 5m",
                               '"service", "endpoint", "method"'),
    # Per job over the last 5 minutes, the same way; and its age as last seen (24 h back).
    "job_counts": (
        f'SELECT sum("runs") AS "runs", sum("failures") AS "failures" FROM "{schema.JOBS}" '
        f'WHERE time > now() - 5m GROUP BY "service", "job"'),
    "job_buckets": select(f'"{schema.JOB_BUCKETS}"', "time > now() - 5m",
                          '"service", "job"'),
    "job_ages": (
        f'SELECT last("seconds_since_success") AS "since", last("in_progress") AS "running" '
        f'FROM "{schema.JOBS}" WHERE time > now() - 24h GROUP BY "service", "job"'),
    # WebSocket messages and closes, and browser-side calls, over the last 5 minutes. Their
    # histograms keep no buckets in InfluxDB: p95 is the worst scrape's, and said so.
    "messages": (
        f'SELECT sum("handling_count") AS "count", max("handling_p95_ms") AS "p95" FROM '
        f'"{schema.WEBSOCKET_MESSAGES}" WHERE time > now() - 5m '
        f'GROUP BY "service", "endpoint", "kind"'),
    "closes": (
        f'SELECT sum("closes") AS "count" FROM "{schema.WEBSOCKET_CLOSES}" '
        f'WHERE time > now() - 5m GROUP BY "service", "endpoint", "code"'),
    "browser": (
        f'SELECT sum("duration_count") AS "count", max("duration_p95_ms") AS "p95" FROM '
        f'"{schema.CLIENT_REQUESTS}" WHERE time > now() - 5m '
        f'GROUP BY "service", "endpoint", "method"'),
}
QUERY = "; ".join(STATEMENTS.values())


def named(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The answer's results by statement name (a missing one is empty)."""
    return {name: result for name, result in zip(STATEMENTS, [*results, *[{}] * len(
        STATEMENTS)], strict=False)}
