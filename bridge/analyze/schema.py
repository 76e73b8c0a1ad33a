"""What the bridge stores: measurement, tag and field names, and how exporters' metric
names map onto them (presets). Pure data and functions, no I/O; docs/schema.md lists it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model import Series

# Measurements (raw retention policy; the roll-ups keep the same names).
PERFORMANCE = "performance_metrics"
LATENCY_BUCKETS = "latency_buckets"
STATUS_CODES = "status_codes"
EXCEPTIONS = "exceptions"
RESOURCES = "resources"
SYSTEM = "system"
DISK = "disk"
EVENTS = "events"
QUEUES = "queues"
CONNECTIONS = "connections"
SCRAPES = "scrape_health"
CLIENT_REQUESTS = "client_requests"
TRENDS = "performance_trends"          # in daily_90d
STATES = "threshold_states"            # threshold state changes
WEBSOCKET_MESSAGES = "websocket_messages"  # message handling time, per route and kind
WEBSOCKET_CLOSES = "websocket_closes"      # closed connections, per route and close code
WEBSOCKET_ERRORS = "websocket_errors"      # handlers ended by an exception
JOBS = "jobs"                          # background job runs, per job kind
JOB_BUCKETS = "job_buckets"            # their duration buckets (exact roll-up percentiles)
JOB_FAILURES = "job_failures"          # failed runs by exception type

# The job-duration histogram (outcome label: success, failure, cancelled).
JOB_HISTOGRAM = "job_duration_seconds"

# Tag values for the service-wide row of performance_metrics.
ALL = "_all"

# The bucket bounds the Grafana percentile panels interpolate over: promflux's exporter
# layout, so its services' percentiles are exact. The other exporters the presets know
# have bounds of their own (prometheus_client's default, used by starlette-exporter, and
# prometheus-fastapi-instrumentator's): their fields are read too, each counted in the
# panel bucket whose bound is the next one up (+Inf above 10 s), so their percentiles land
# in that coarser bucket.
PANEL_BOUNDS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35,
    0.4, 0.45, 0.5, 0.6, 0.75, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0)
OTHER_EXPORTER_BOUNDS: tuple[float, ...] = (3.0, 3.5, 4.0, 4.5, 7.5, 30.0, 60.0)
# The same for job durations: promflux's job layout.
JOB_PANEL_BOUNDS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    600.0, 1800.0, 3600.0)

PERCENTILES: tuple[tuple[str, float], ...] = (
    ("p50_ms", 0.5), ("p90_ms", 0.9), ("p95_ms", 0.95), ("p99_ms", 0.99))


@dataclass(frozen=True)
class Preset:
    """Where an exporter keeps request latency, and which labels name what."""

    name: str
    latency: str | None              # histogram base name, in seconds (None: counts only)
    endpoint_label: str
    method_label: str
    status_label: str | None         # None: the histogram has no status label
    requests: str | None = None      # then: a counter with the status, for errors
    requests_status_label: str | None = None


PRESETS: dict[str, Preset] = {
    "promflux": Preset("promflux", "http_request_duration_seconds", "route", "method",
                       "status"),
    "prometheus-fastapi-instrumentator": Preset(
        "prometheus-fastapi-instrumentator", "http_request_duration_seconds", "handler",
        "method", None, requests="http_requests_total", requests_status_label="status"),
    "starlette-exporter": Preset(
        "starlette-exporter", "starlette_request_duration_seconds", "path", "method",
        "status_code"),
    # aioprometheus's ASGI middleware counts requests by status but keeps no latency.
    "aioprometheus": Preset(
        "aioprometheus", None, "path", "method", None, requests="status_codes_counter",
        requests_status_label="status_code"),
}

# Gauge metric -> (measurement, field, labels kept as tags as {label: tag}).
GAUGES: dict[str, tuple[str, str, dict[str, str]]] = {
    "service_memory_rss_bytes": (RESOURCES, "memory_mb", {"pid": "pid"}),
    # (the megabytes names: from exporters before 0.3)
    "service_memory_rss_megabytes": (RESOURCES, "memory_mb", {"pid": "pid"}),
    "service_memory_percent": (RESOURCES, "memory_percent", {"pid": "pid"}),
    "service_threads": (RESOURCES, "threads", {"pid": "pid"}),
    "service_open_fds": (RESOURCES, "open_fds", {"pid": "pid"}),
    "service_disk_usage_percent": (DISK, "used_percent", {"path": "path"}),
    "system_memory_percent": (SYSTEM, "memory_percent", {}),
    "service_memory_limit_bytes": (SYSTEM, "memory_limit_mb", {}),
    "service_memory_limit_megabytes": (SYSTEM, "memory_limit_mb", {}),
    "service_cpu_limit_cores": (SYSTEM, "cpu_limit_cores", {}),
    "system_cpu_cores": (SYSTEM, "cores", {}),
    "queue_size": (QUEUES, "size", {"queue": "queue"}),
    "websocket_connections_active": (CONNECTIONS, "websocket_active", {"route": "endpoint"}),
    "http_requests_in_progress": (CONNECTIONS, "http_in_progress", {}),
    "jobs_in_progress": (JOBS, "in_progress", {"job": "job"}),
    # also gives "seconds_since_success", at the scrape's time
    "job_last_success_timestamp_seconds": (JOBS, "last_success", {"job": "job"}),
}

# Field names the bridge writes, which a target label (a tag) must not repeat: InfluxQL
# reads a name that is both as the field, so the tag could not be selected by it.
FIELD_NAMES: frozenset[str] = frozenset({
    "requests", "requests_per_minute", "errors", "errors_per_minute", "client_errors",
    "error_rate_percent", "client_error_rate_percent", "response_time_ms", "latency_sum_ms",
    "requests_within_limit", "interval_s", "up", "duration_ms", "samples", "last_error",
    "level", "value", "threshold", "baseline", "previous", "events", "exceptions", "runs",
    "runs_per_minute", "failures", "cancelled", "duration_sum_ms", "failure_percent",
    "duration_mean_ms", "size", "in_progress", "seconds_since_success",
    *(name for name, _ in PERCENTILES), *(field for _, field, _ in GAUGES.values())})

# What a gauge's value is multiplied by for its field (the fields keep MiB, whatever
# unit the exporter's version sends).
GAUGE_SCALES: dict[str, float] = {"service_memory_rss_bytes": 1 / 2**20,
                                  "service_memory_limit_bytes": 1 / 2**20}

# Counter metric -> (measurement, field prefix, labels kept as tags). Each gives
# "<prefix>" (the increase) and "<prefix>_per_minute".
COUNTERS: dict[str, tuple[str, str, dict[str, str]]] = {
    "events_processed_total": (EVENTS, "events", {"kind": "kind"}),
    "http_exceptions_total": (
        EXCEPTIONS, "exceptions",
        {"route": "endpoint", "method": "method", "exception": "exception"}),
    "websocket_connections_opened_total": (CONNECTIONS, "websocket_opened", {"route": "endpoint"}),
    "websocket_messages_received_total": (
        CONNECTIONS, "websocket_messages_received", {"route": "endpoint"}),
    "websocket_messages_sent_total": (
        CONNECTIONS, "websocket_messages_sent", {"route": "endpoint"}),
    "job_failures_total": (JOB_FAILURES, "failures", {"job": "job", "exception": "exception"}),
    "websocket_closes_total": (WEBSOCKET_CLOSES, "closes", {"route": "endpoint", "code": "code"}),
    "websocket_errors_total": (
        WEBSOCKET_ERRORS, "errors", {"route": "endpoint", "exception": "exception"}),
}

# CPU-seconds counter -> (measurement, field, labels kept as tags, the GAUGES field that
# holds the cores it is a share of). The field is the percent of those cores used over
# the bridge's own interval: 100 x increase / seconds / cores. From counters, so any
# number of scrapers see the same figure.
CPU_COUNTERS: dict[str, tuple[str, str, dict[str, str], str]] = {
    "service_cpu_seconds_total": (RESOURCES, "cpu_percent", {"pid": "pid"}, "cpu_limit_cores"),
    "system_cpu_busy_seconds_total": (SYSTEM, "cpu_percent", {}, "cores"),
}

# Histogram -> (measurement, field prefix, labels kept as tags): p50/p95/p99/mean in ms.
HISTOGRAMS: dict[str, tuple[str, str, dict[str, str]]] = {
    "queue_wait_seconds": (QUEUES, "wait", {"queue": "queue"}),
    "websocket_message_duration_seconds": (
        WEBSOCKET_MESSAGES, "handling", {"route": "endpoint", "kind": "kind"}),
    "websocket_connection_duration_seconds": (
        CONNECTIONS, "websocket_duration", {"route": "endpoint"}),
    "http_client_request_duration_seconds": (
        CLIENT_REQUESTS, "duration", {"route": "endpoint", "method": "method",
                                      "status": "status"}),
}

# Process start time (prometheus_client's default collector): a change means a restart.
START_TIME = "process_start_time_seconds"


def tags_of(series: Series, mapping: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """The series' labels renamed to tags by ``mapping`` (missing labels left out)."""
    labels = dict(series.labels)
    return tuple((tag, labels[label]) for label, tag in mapping.items() if labels.get(label))
