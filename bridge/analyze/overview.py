"""The last hour of each service, for the status page: the reduction of the stored answer
(``store.influxql.overview``, by statement name) to current figures and chart series.
Pure, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import bucket_fields
from .derive import percentile_fields

RECENT_MS = 5 * 60 * 1000


@dataclass
class ServiceFigures:
    """Current figures (None: no data in the last hour) and the hour's chart series."""

    p95_ms: float | None = None
    requests_per_minute: float | None = None
    error_rate_percent: float | None = None
    client_error_rate_percent: float | None = None  # 4xx
    cpu_percent: float | None = None
    memory_mb: float | None = None
    memory_percent: float | None = None
    disk_percent: float | None = None
    p95_series: list[tuple[int, float]] = field(default_factory=list)
    rpm_series: list[tuple[int, float]] = field(default_factory=list)
    # each scrape's 5xx share: its errors over its requests (scrapes with requests only)
    error_series: list[tuple[int, float]] = field(default_factory=list)
    # When each kind of figure was last written (ms), so a page can tell current from stale,
    # and the time the requests-per-minute figure covers (at most RECENT_MS).
    requests_ms: int | None = None
    p95_at_ms: int | None = None  # the scrape p95_ms is of (the last one with requests)
    resources_ms: int | None = None
    disk_ms: int | None = None
    rpm_span_ms: float = 0.0


@dataclass(frozen=True)
class StateChange:
    """One stored threshold state change (newest first on the page)."""

    at_ms: int
    service: str
    endpoint: str
    metric: str
    previous: str
    level: str
    value: float | None


Answer = Mapping[str, dict[str, Any]]  # statement name -> its result


def recent_changes(results: Answer) -> list[StateChange]:
    """The last state changes of the last day."""
    out = []
    for series in results.get("changes", {}).get("series", []):
        for row in rows_of(series):
            out.append(StateChange(int(row["time"]), str(row.get("service") or ""),
                                   str(row.get("endpoint") or ""), str(row.get("metric") or ""),
                                   str(row.get("previous") or ""), str(row.get("level") or ""),
                                   row.get("value")))
    return out


@dataclass(frozen=True)
class EndpointFigures:
    """One endpoint over the last 5 minutes, every figure exact from summed counts."""

    endpoint: str
    method: str
    requests: float
    p95_ms: float | None
    within_limit_percent: float | None
    error_rate_percent: float | None
    client_error_rate_percent: float | None


def endpoints(results: Answer) -> dict[str, list[EndpointFigures]]:
    """The endpoints' counts and buckets -> each service's endpoints, busiest first."""
    buckets: dict[tuple[str, str, str], dict[float, float]] = {}
    for series in results.get("endpoint_buckets", {}).get("series", []):
        tags = series.get("tags", {})
        key = (tags.get("service", ""), tags.get("endpoint", ""), tags.get("method", ""))
        buckets[key] = bucket_fields.cumulative(rows_of(series))
    out: dict[str, list[EndpointFigures]] = {}
    for series in results.get("endpoint_counts", {}).get("series", []):
        tags = series.get("tags", {})
        key = (tags.get("service", ""), tags.get("endpoint", ""), tags.get("method", ""))
        for row in rows_of(series):
            requests = float(row.get("requests") or 0.0)
            if requests <= 0:
                continue
            p95 = percentile_fields(buckets.get(key, {})).get("p95_ms")
            within, errors, client = (_percent(row.get(name), requests)
                                      for name in ("within", "errors", "client_errors"))
            out.setdefault(key[0], []).append(EndpointFigures(
                key[1], key[2], requests, p95, within, errors, client))
    for rows in out.values():
        rows.sort(key=lambda e: (-e.requests, e.endpoint, e.method))
    return out


@dataclass(frozen=True)
class JobFigures:
    """One job kind: runs in the last 5 minutes (exact from summed counts and buckets), and
    its age and runs in progress as last scraped."""

    job: str
    runs: float
    failure_percent: float | None
    p95_ms: float | None
    seconds_since_success: float | None
    in_progress: float | None


def jobs(results: Answer) -> dict[str, list[JobFigures]]:
    """The jobs' counts, buckets and ages -> each service's jobs, by name."""
    buckets: dict[tuple[str, str], dict[float, float]] = {}
    for series in results.get("job_buckets", {}).get("series", []):
        tags = series.get("tags", {})
        buckets[(tags.get("service", ""), tags.get("job", ""))] = bucket_fields.cumulative(
            rows_of(series))
    counts: dict[tuple[str, str], tuple[float, float]] = {}
    for series in results.get("job_counts", {}).get("series", []):
        tags = series.get("tags", {})
        for row in rows_of(series):
            counts[(tags.get("service", ""), tags.get("job", ""))] = (
                float(row.get("runs") or 0.0), float(row.get("failures") or 0.0))
    out: dict[str, list[JobFigures]] = {}
    for series in results.get("job_ages", {}).get("series", []):
        tags = series.get("tags", {})
        key = (tags.get("service", ""), tags.get("job", ""))
        row = (rows_of(series) or [{}])[0]
        runs, failures = counts.get(key, (0.0, 0.0))
        out.setdefault(key[0], []).append(JobFigures(
            key[1], runs, _percent(failures, runs) if runs > 0 else None,
            percentile_fields(buckets.get(key, {})).get("p95_ms"), row.get("since"),
            row.get("running")))
    for rows in out.values():
        rows.sort(key=lambda j: j.job)
    return out


@dataclass(frozen=True)
class CountRow:
    """A count over the last 5 minutes by two tags (route and kind, code or method), with
    the worst scrape's p95 where there is one."""

    route: str
    label: str
    count: float
    p95_ms: float | None = None


def counted(results: Answer, name: str, label: str) -> dict[str, list[CountRow]]:
    """Statement ``name`` (messages: WebSocket messages by kind, closes: by code, browser:
    browser calls by method) -> each service's rows, busiest first."""
    out: dict[str, list[CountRow]] = {}
    for series in results.get(name, {}).get("series", []):
        tags = series.get("tags", {})
        for row in rows_of(series):
            count = float(row.get("count") or 0.0)
            if count > 0:
                out.setdefault(tags.get("service", ""), []).append(CountRow(
                    tags.get("endpoint", ""), tags.get(label, ""), count, row.get("p95")))
    for rows in out.values():
        rows.sort(key=lambda r: (-r.count, r.route, r.label))
    return out


def _percent(part: Any, whole: float) -> float | None:
    """100 x part / whole (summed numerator over summed denominator); None without part."""
    return None if part is None else 100.0 * float(part) / whole


def rows_of(series: dict[str, Any]) -> list[dict[str, Any]]:
    """One InfluxDB series' rows as column -> value mappings."""
    columns = series["columns"]
    return [dict(zip(columns, row, strict=False)) for row in series.get("values", [])]


def reduce(results: Answer) -> dict[str, ServiceFigures]:
    """The services', resources' and disks' statements -> figures per service."""
    out: dict[str, ServiceFigures] = {}

    def of(series: dict[str, Any]) -> ServiceFigures:
        return out.setdefault(series.get("tags", {}).get("service", ""), ServiceFigures())

    performance, resources, disk = (results.get(name, {}) for name in (
        "services", "resources", "disks"))

    for series in performance.get("series", []):
        figures, rows = of(series), rows_of(series)
        if not rows:
            continue
        recent_from = rows[-1]["time"] - RECENT_MS
        requests = errors = client_errors = 0.0
        covered_ms = 0.0  # the time the recent rows' counts cover: each row's interval
        previous: float | None = None
        gap = 0.0
        for row in rows:
            if row["p95_ms"] is not None:
                figures.p95_series.append((row["time"], row["p95_ms"]))
                figures.p95_ms, figures.p95_at_ms = row["p95_ms"], int(row["time"])
            if row["requests_per_minute"] is not None:
                figures.rpm_series.append((row["time"], row["requests_per_minute"]))
            if row["requests"]:
                figures.error_series.append(
                    (row["time"], 100.0 * (row["errors"] or 0.0) / row["requests"]))
            if previous is not None:
                gap = row["time"] - previous
            previous = row["time"]
            if row["time"] > recent_from:
                count, rate = row["requests"] or 0.0, row["requests_per_minute"]
                requests += count
                errors += row["errors"] or 0.0
                client_errors += row.get("client_errors") or 0.0
                # A row's interval is its count over its rate; a row without requests
                # covers the time since the previous row.
                covered_ms += 60_000.0 * count / rate if count and rate else gap
        figures.requests_ms = int(rows[-1]["time"])
        figures.rpm_span_ms = min(covered_ms, float(RECENT_MS))
        if covered_ms > 0:  # summed requests over the time they cover
            figures.requests_per_minute = 60_000.0 * requests / covered_ms
        if requests > 0:  # summed numerators over summed denominators
            figures.error_rate_percent = 100.0 * errors / requests
            figures.client_error_rate_percent = 100.0 * client_errors / requests
    latest: dict[str, dict[str, dict[str, Any]]] = {}
    for series in resources.get("series", []):
        rows = rows_of(series)
        if rows:  # the newest row of each process, summed per service
            latest.setdefault(series["tags"]["service"], {})[series["tags"].get("pid", "")] = \
                rows[-1]
    for service, by_pid in latest.items():
        figures = out.setdefault(service, ServiceFigures())
        # Only the processes of the newest scrape (one scrape writes every pid at the same
        # time): a restarted process's old pid is not summed in.
        newest = max(r["time"] for r in by_pid.values())
        figures.resources_ms = int(newest)
        current = [r for r in by_pid.values() if r["time"] == newest]
        for name in ("cpu_percent", "memory_mb", "memory_percent"):
            values = [r[name] for r in current if r.get(name) is not None]
            if values:
                setattr(figures, name, sum(values))
    for series in disk.get("series", []):
        rows = rows_of(series)
        if rows:
            figures = of(series)
            figures.disk_percent = rows[-1].get("last")
            figures.disk_ms = int(rows[-1]["time"])
    return out
