"""The Grafana dashboards, generated from this file (the JSON in dashboards/ is its output).

    python grafana/build.py          # rewrite grafana/dashboards/*.json
    python grafana/build.py --check  # exit 1 when the JSON is not what this file makes

Every query is raw InfluxQL against the measurements in docs/schema.md, with Grafana's
``$timeFilter``, ``$__interval`` and the dashboard's template variables. The datasource is
``${DS_INFLUXDB}``: the import input when imported by hand, a datasource variable (the default
InfluxDB) when provisioned. No uid, host or database is written here.
tests/test_grafana.py runs every query against a real InfluxDB filled by the real bridge.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from percentile_sql import percentiles_query  # noqa: E402
from promflux.bridge.analyze.schema import (  # noqa: E402
    JOB_PANEL_BOUNDS,
    OTHER_EXPORTER_BOUNDS,
    PANEL_BOUNDS,
)
from promflux.bridge.analyze.thresholds import DEFAULTS  # noqa: E402

OUT = Path(__file__).resolve().parent / "dashboards"
# "${DS_INFLUXDB}" is both the import input (Grafana's import replaces it with the chosen
# datasource) and a datasource variable of the same name (provisioning leaves it alone, and
# the variable picks the default InfluxDB). Its ``current`` must stay empty: a provisioned
# "${DS_INFLUXDB}" there is "datasource not found" (grafana/grafana#29636, #10786).
DS = {"type": "influxdb", "uid": "${DS_INFLUXDB}"}
ALL_ROW = "\"endpoint\" = '_all'"
SERVICE = '"service" =~ /^$service$/'
ENDPOINT = '"endpoint" =~ /^$endpoint$/'

# The seed's limits, as the bridge checks them: warning at the limit, critical beyond.
LIMITS = {kind: (DEFAULTS[metric].warning, DEFAULTS[metric].critical) for kind, metric in (
    ("p95", "p95_ms"), ("error", "error_rate_percent"), ("cpu", "cpu_percent"),
    ("memory", "memory_percent"), ("disk", "disk_percent"))}


# Per-minute rates over the whole range: summed counts / minutes (the contract in
# docs/schema.md); never a sum or mean of the per-interval rates. Per bin: ``rate``.
PER_MIN_RANGE = "* 60 / $__range_s"
LIMIT_MS = int(DEFAULTS["p95_ms"].warning)

# Where each tier of bucket rows holds the range (raw rows are kept 7 days, hourly 30).
TIERS = (("", "", "time > now() - 7d"),
         (" (hourly roll-up)", '"hourly_30d".', "time <= now() - 7d AND time > now() - 30d"),
         (" (daily roll-up)", '"daily_90d".', "time <= now() - 30d"))


def percentile_panel(title: str, targets: list[dict[str, Any]], description: str
                     ) -> dict[str, Any]:
    """A percentile time series drawn with at most 400 bins: each bin's percentile is an
    expression over ~35 summed fields, about 8x the query time of a plain aggregate per
    bin (docs/performance.md)."""
    panel = timeseries(title, targets, "ms", "p95", description)
    panel["maxDataPoints"] = 400
    return panel


def percentile_targets(where: str, tag: str, quantiles: dict[str, float], alias: str,
                       measurement: str = "latency_buckets",
                       bounds: tuple[float, ...] = PANEL_BOUNDS,
                       others: tuple[float, ...] = OTHER_EXPORTER_BOUNDS
                       ) -> list[dict[str, Any]]:
    """The exact percentiles of each bin's requests (percentile_sql), one target per tier of
    bucket rows, so a 30- or 90-day range is served from the roll-ups."""
    return [target(percentiles_query(bounds, f'{rp}"{measurement}"', f"{where} AND {tier}",
                                     f'"{tag}"', quantiles, others), ref, alias + suffix)
            for ref, (suffix, rp, tier) in zip("ABC", TIERS, strict=True)]


def thresholds(kind: str | None) -> dict[str, Any]:
    if kind == "within":  # share within the p95 limit: 95 % or more meets it
        return {"mode": "absolute", "steps": [{"color": "red", "value": None},
                                              {"color": "green", "value": 95}]}
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    if kind:
        warning, critical = LIMITS[kind]
        steps += [{"color": "orange", "value": warning}, {"color": "red", "value": critical}]
    return {"mode": "absolute", "steps": steps}


def target(query: str, ref: str = "A", alias: str = "", table: bool = False) -> dict[str, Any]:
    out = {"refId": ref, "datasource": DS, "rawQuery": True, "query": query,
           "resultFormat": "table" if table else "time_series"}
    if alias:
        out["alias"] = alias
    return out


class Layout:
    """Panels placed left to right, 24 columns wide, with ids in order."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.x = self.y = self.row_h = 0

    def add(self, panel: dict[str, Any], w: int = 12, h: int = 8) -> None:
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        panel["id"] = len(self.panels) + 1
        panel["gridPos"] = {"x": self.x, "y": self.y, "w": w, "h": h}
        panel["datasource"] = DS
        self.panels.append(panel)
        self.x += w
        self.row_h = max(self.row_h, h)


def timeseries(title: str, targets: list[dict[str, Any]], unit: str,
               limit: str | None = None, description: str = "") -> dict[str, Any]:
    return {"type": "timeseries", "title": title, "description": description,
            "targets": targets,
            "fieldConfig": {"defaults": {"unit": unit, "thresholds": thresholds(limit),
                                         "custom": {"thresholdsStyle": {
                                             "mode": "line" if limit else "off"},
                                             "spanNulls": True}},
                            "overrides": []},
            "options": {"legend": {"displayMode": "table", "placement": "bottom",
                                   "calcs": ["mean", "max", "lastNotNull"]},
                        "tooltip": {"mode": "multi"}}}


def heatmap(title: str, targets: list[dict[str, Any]], description: str = "") -> dict[str, Any]:
    """One series per bucket field (``sum_le_<bound>``), renamed to its upper bound so the
    heatmap reads it as the bucket's ``le``; each bin's requests in that bucket."""
    return {"type": "heatmap", "title": title, "description": description, "targets": targets,
            "transformations": [{"id": "renameByRegex", "options": {
                "regex": "^.*le_(.+)$", "renamePattern": "$1"}}],
            "fieldConfig": {"defaults": {}, "overrides": []},
            "options": {"calculate": False, "rowsFrame": {"layout": "le"},
                        "yAxis": {"unit": "s", "axisPlacement": "left"},
                        "color": {"mode": "scheme", "scheme": "Oranges", "steps": 64},
                        "cellGap": 1, "tooltip": {"mode": "single", "yHistogram": True},
                        "legend": {"show": True}}}


def table(title: str, targets: list[dict[str, Any]], columns: dict[str, tuple[str, str | None]],
          description: str = "") -> dict[str, Any]:
    """A table merged from several table-format queries; ``columns``: field -> (unit, limit)."""
    overrides = []
    for name, (unit, limit) in columns.items():
        props: list[dict[str, Any]] = [{"id": "unit", "value": unit}]
        if limit:
            props += [{"id": "thresholds", "value": thresholds(limit)},
                      {"id": "custom.cellOptions", "value": {"type": "color-background"}}]
        overrides.append({"matcher": {"id": "byName", "options": name}, "properties": props})
    return {"type": "table", "title": title, "description": description, "targets": targets,
            "transformations": [{"id": "merge", "options": {}},
                                {"id": "organize", "options": {"excludeByName": {"Time": True}}}],
            "fieldConfig": {"defaults": {}, "overrides": overrides},
            "options": {"showHeader": True}}


def variables(*extra: dict[str, Any]) -> dict[str, Any]:
    datasource = {"name": "DS_INFLUXDB", "label": "InfluxDB", "type": "datasource",
                  "query": "influxdb", "hide": 0, "refresh": 1, "regex": "",
                  "options": []}
    return {"list": [datasource, *extra]}


def query_variable(name: str, query: str, include_all: bool = False) -> dict[str, Any]:
    return {"name": name, "label": name, "type": "query", "datasource": DS, "query": query,
            "refresh": 2, "sort": 1, "multi": include_all, "includeAll": include_all,
            "options": [], "hide": 0}


def dashboard(uid: str, title: str, panels: list[dict[str, Any]], templating: dict[str, Any],
              time_from: str = "now-6h", tags: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "__inputs": [{"name": "DS_INFLUXDB", "label": "InfluxDB", "type": "datasource",
                      "pluginId": "influxdb", "pluginName": "InfluxDB",
                      "description": "The InfluxDB (InfluxQL) database the bridge writes"}],
        "__requires": [{"type": "datasource", "id": "influxdb", "name": "InfluxDB",
                        "version": "1.0.0"}],
        "uid": uid, "title": title, "tags": ["promflux", *tags], "timezone": "browser",
        "schemaVersion": 39, "version": 1, "editable": True, "refresh": "30s",
        "time": {"from": time_from, "to": "now"}, "templating": templating,
        "annotations": {"list": []}, "panels": panels,
    }


def rate(measurement: str, where: str, fields: dict[str, str], group: str) -> str:
    """Per-minute rates in each bin (``fields``: field -> column): each series' summed
    count over the time its rows cover (``interval_s``, the scrape intervals they count),
    then summed over the series of each ``group`` (quoted tags). A bin shorter than a scrape
    interval, or not a multiple of it, or cut by the range's edge, holds the rows it holds
    and divides by their time: no bin is a multiple or a fraction of the true rate."""
    inner = ", ".join(f'sum("{name}") * 60 / sum("interval_s") AS "{column}"'
                      for name, column in fields.items())
    outer = ", ".join(f'sum("{column}") AS "{column}"' for column in fields.values())
    return (f'SELECT {outer} FROM (SELECT {inner} FROM "{measurement}" WHERE {where} '
            f"GROUP BY time($__interval), * fill(none)) WHERE $timeFilter "
            f"GROUP BY time($__interval), {group} fill(none)")


def rate_by_tag(title: str, field: str, measurement: str, where: str, tag: str,
                unit: str) -> dict[str, Any]:
    """One series per value of ``tag``: ``field``'s per-minute rate per bin (``rate``)."""
    return timeseries(title, [target(rate(measurement, where, {field: "per minute"},
                                          f'"{tag}"'), alias=f"$tag_{tag}")], unit)


def by_tag(title: str, select: str, measurement: str, where: str, tag: str, unit: str,
           limit: str | None = None, rp: str = "", bin_: str = "$__interval"
           ) -> dict[str, Any]:
    """One series per value of ``tag``: ``select`` (e.g. 'sum("requests")') per bin."""
    source = f'"{rp}"."{measurement}"' if rp else f'"{measurement}"'
    return timeseries(title, [target(
        f'SELECT {select} FROM {source} WHERE {where} GROUP BY time({bin_}), '
        f'"{tag}" fill(none)', alias=f"$tag_{tag}")], unit, limit)


def per_service_sum(measurement: str, field: str, group_extra: str = "") -> str:
    """A gauge summed over a service's processes (per interval, mean per process first)."""
    return (f'SELECT sum("v") FROM (SELECT mean("{field}") AS "v" FROM "{measurement}" WHERE '
            f'$timeFilter GROUP BY time($__interval), "service", "pid"{group_extra}) '
            f'GROUP BY time($__interval), "service"')


def states_panel(layout: Layout) -> None:
    # Not $timeFilter: a state set before the range is still the current one.
    # Regressions are states too (metric p95_regression / error_rate_regression, level
    # "regression"), with the baseline they were judged against.
    layout.add({"type": "table", "title": "Current threshold and regression states",
                "targets": [target(
        'SELECT last("level") AS "level", "value", "baseline" FROM "threshold_states" '
        'WHERE time > now() - 7d GROUP BY "service", "endpoint", "metric"', table=True)],
        "fieldConfig": {"defaults": {}, "overrides": []}, "options": {"showHeader": True},
        "transformations": [{"id": "organize", "options": {"excludeByName": {"Time": True}}}]},
        w=12, h=8)
    layout.add(timeseries("State changes (0 ok, 1 warning or regression, 2 critical)", [target(
        'SELECT max("severity") FROM "threshold_states" WHERE $timeFilter '
        'GROUP BY time($__interval), "service", "metric" fill(none)',
        alias="$tag_service $tag_metric")], "none"), w=12, h=8)


def overview() -> dict[str, Any]:
    layout = Layout()
    # Summed per scrape (a scrape writes every pid at one time), then the newest sum: a
    # restarted process's old pid is not added in.
    last_per_pid = ('SELECT last("v") AS "{alias}" FROM (SELECT sum("{field}") AS "v" FROM '
                    '"resources" WHERE $timeFilter GROUP BY time(1s), "service" fill(none)) '
                    'GROUP BY "service"')
    layout.add(table("Services now", [
        target('SELECT last("up") AS "up" FROM "scrape_health" WHERE $timeFilter '
               'GROUP BY "service"', "A", table=True),
        target('SELECT last("p95_ms") AS "last-scrape p95" FROM "performance_metrics" WHERE '
               f'{ALL_ROW} AND $timeFilter GROUP BY "service"', "B", table=True),
        target(f'SELECT sum("requests") {PER_MIN_RANGE} AS "requests/min" FROM '
               f'"performance_metrics" WHERE {ALL_ROW} AND $timeFilter GROUP BY "service"',
               "C", table=True),
        target('SELECT 100 * sum("errors") / sum("requests") AS "error %" FROM '
               f'"performance_metrics" WHERE {ALL_ROW} AND $timeFilter GROUP BY "service"',
               "D", table=True),
        target(last_per_pid.format(alias="CPU %", field="cpu_percent"), "E", table=True),
        target(last_per_pid.format(alias="memory %", field="memory_percent"), "F", table=True),
        target('SELECT last("used_percent") AS "disk %" FROM "disk" WHERE $timeFilter '
               'GROUP BY "service"', "G", table=True),
        target('SELECT 100 * sum("client_errors") / sum("requests") AS "4xx %" FROM '
               f'"performance_metrics" WHERE {ALL_ROW} AND $timeFilter GROUP BY "service"',
               "H", table=True),
        target(f'SELECT 100 * sum("requests_within_limit") / sum("requests") AS '
               f'"within {LIMIT_MS} ms %" FROM "performance_metrics" WHERE {ALL_ROW} AND '
               '$timeFilter GROUP BY "service"', "I", table=True),
    ], {"up": ("none", None), "last-scrape p95": ("ms", "p95"),
        "requests/min": ("reqpm", None),
        "error %": ("percent", "error"), "4xx %": ("percent", None),
        f"within {LIMIT_MS} ms %": ("percent", "within"), "CPU %": ("percent", "cpu"),
        "memory %": ("percent", "memory"), "disk %": ("percent", "disk")},
        "Over the time range: throughput from summed requests, error rates from summed "
        "counts, the exact share within the p95 limit (95 % or more meets it); the p95 of "
        "the last scrape; resources now."),
        w=24, h=7)
    layout.add(percentile_panel("p95 by service", percentile_targets(
        "$timeFilter", "service", {"p95": 0.95}, "$tag_service"),
        "The p95 of all the service's requests in each bin (every endpoint and instance), "
        "exact to its latency bucket, from the stored bucket counts."))
    layout.add(timeseries("Requests per minute by service", [target(
        rate("performance_metrics", f"{ALL_ROW} AND $timeFilter", {"requests": "per minute"},
             '"service"'), alias="$tag_service")], "reqpm"))
    layout.add(timeseries("Error rate by service", [target(
        'SELECT 100 * sum("errors") / sum("requests") FROM "performance_metrics" WHERE '
        f'{ALL_ROW} AND $timeFilter GROUP BY time($__interval), "service" fill(none)',
        alias="$tag_service")], "percent", "error"))
    layout.add(timeseries("4xx answers by service (client errors, missing routes)", [target(
        'SELECT 100 * sum("client_errors") / sum("requests") FROM "performance_metrics" '
        f'WHERE {ALL_ROW} AND $timeFilter GROUP BY time($__interval), "service" fill(none)',
        alias="$tag_service")], "percent"))
    layout.add(timeseries("Events per minute", [target(
        rate("events", "$timeFilter", {"events": "per minute"}, '"service", "kind"'),
        alias="$tag_service $tag_kind")], "short"))
    layout.add(timeseries("CPU by service (% of its limit, processes summed)", [target(
        per_service_sum("resources", "cpu_percent"), alias="$tag_service")], "percent", "cpu"),
        w=8)
    layout.add(timeseries("Memory by service (% of its limit, processes summed)", [target(
        per_service_sum("resources", "memory_percent"), alias="$tag_service")], "percent",
        "memory"), w=8)
    layout.add(timeseries("Disk used", [target(
        'SELECT mean("used_percent") FROM "disk" WHERE $timeFilter '
        'GROUP BY time($__interval), "service", "path" fill(none)',
        alias="$tag_service $tag_path")], "percent", "disk"), w=8)
    states_panel(layout)
    layout.add(timeseries("Scrape health (1 = up)", [target(
        'SELECT min("up") FROM "scrape_health" WHERE $timeFilter '
        'GROUP BY time($__interval), "service" fill(none)', alias="$tag_service")], "none"),
        w=24, h=6)
    return dashboard("promflux-overview", "promflux: health overview", layout.panels,
                     variables(), "now-1h")


def service_detail() -> dict[str, Any]:
    layout = Layout()
    where = f"{SERVICE} AND {ENDPOINT} AND $timeFilter"
    layout.add(table("Endpoints", [
        target(f'SELECT 100 * sum("requests_within_limit") / sum("requests") AS '
               f'"within {LIMIT_MS} ms %", '
               f'sum("requests") {PER_MIN_RANGE} AS "requests/min", 100 * sum("errors") / '
               'sum("requests") AS "error %", 100 * sum("client_errors") / sum("requests") AS '
               f'"4xx %", max("p95_ms") AS "slowest single-scrape p95" '
               f'FROM "performance_metrics" WHERE {where} GROUP BY "endpoint", "method"',
               table=True),
    ], {f"within {LIMIT_MS} ms %": ("percent", "within"), "requests/min": ("reqpm", None),
        "error %": ("percent", "error"), "4xx %": ("percent", None),
        "slowest single-scrape p95": ("ms", None)},
        f"Over the time range, per endpoint and method: the share of requests answered within "
        f"{LIMIT_MS} ms, exact from the buckets (95 % or more: the p95 limit is met), and "
        "rates from summed counts. The last column is the highest p95 of any one scrape "
        "interval (a burst's mark), not the range's p95: that is on the Latency percentiles "
        "panel per bin, and the bridge's /api/percentiles over any range."), w=24, h=9)
    layout.add(heatmap("Latency distribution (requests per bucket)", [target(
        'SELECT sum(/^le_/) FROM "latency_buckets" WHERE '
        f'{where} GROUP BY time($__interval) fill(0)', alias="$col")],
        "Requests in each latency bucket per bin, from the stored bucket counts: a second "
        "mode of slow requests shows as its own band."), w=24)
    layout.add(percentile_panel("Latency percentiles", percentile_targets(
        where, "endpoint", {"p50": 0.5, "p95": 0.95, "p99": 0.99}, "$tag_endpoint $col"),
        "The percentiles of all the endpoint's requests in each bin (every "
        "instance and method), exact to the latency bucket, from the stored bucket counts; "
        "beyond 7 days from the hourly roll-ups, beyond 30 from the daily ones."))
    of_service = f"{SERVICE} AND $timeFilter"
    layout.add(rate_by_tag("Throughput", "requests", "performance_metrics", where,
                           "endpoint", "reqpm"))
    layout.add(by_tag("Responses by status", 'sum("requests")', "status_codes", where,
                      "status", "short"))
    layout.add(by_tag("Exceptions by type", 'sum("exceptions")', "exceptions", where,
                      "exception", "short"))
    layout.add(by_tag("Error rate (5xx)", '100 * sum("errors") / sum("requests")',
                      "performance_metrics", where, "endpoint", "percent", "error"))
    layout.add(by_tag("4xx rate", '100 * sum("client_errors") / sum("requests")',
                      "performance_metrics", where, "endpoint", "percent"))
    layout.add(rate_by_tag("Events per minute", "events", "events", of_service, "kind",
                           "short"))
    layout.add(by_tag("Queue sizes", 'max("size")', "queues", of_service, "queue", "short"))
    layout.add(by_tag("Queue waits p95 (worst scrape in each bin)", 'max("wait_p95_ms")',
                      "queues", of_service, "queue", "ms"))
    # Background jobs (workers' metrics.job): runs, failures, duration, age.
    layout.add(rate_by_tag("Job runs per minute", "runs", "jobs", of_service, "job", "short"),
               w=6)
    layout.add(by_tag("Job failures (% of runs)", '100 * sum("failures") / sum("runs")', "jobs",
                      of_service, "job", "percent"), w=6)
    layout.add(percentile_panel("Job duration p95", percentile_targets(
        of_service, "job", {"p95": 0.95}, "$tag_job", "job_buckets", JOB_PANEL_BOUNDS, ()),
        "The p95 of every run of the job in each bin, exact to its duration bucket."), w=6)
    layout.add(by_tag("Time since a job last succeeded", 'max("seconds_since_success")', "jobs",
                      of_service, "job", "s"), w=6)
    layout.add(timeseries("Active connections", [target(
        'SELECT max("http_in_progress") AS "HTTP in progress" FROM "connections" WHERE '
        f'{SERVICE} AND $timeFilter GROUP BY time($__interval) fill(none)', "A"), target(
        'SELECT max("websocket_active") AS "WebSocket" FROM "connections" WHERE '
        f'{SERVICE} AND $timeFilter GROUP BY time($__interval), "endpoint" fill(none)', "B",
        alias="WebSocket $tag_endpoint")], "short"))
    layout.add(timeseries("WebSocket messages per minute", [target(
        rate("connections", f"{SERVICE} AND $timeFilter", {
            "websocket_messages_received": "received", "websocket_messages_sent": "sent"},
            '"endpoint"'), alias="$tag_endpoint $col")], "short"))
    # WebSocket routes are not HTTP endpoints: by service, not by the endpoint variable.
    layout.add(rate_by_tag("WebSocket messages handled per minute, by kind",
                           "handling_count", "websocket_messages", of_service, "kind",
                           "short"), w=8)
    layout.add(by_tag("WebSocket message handling p95, by kind (worst scrape in each bin)",
                      'max("handling_p95_ms")', "websocket_messages", of_service, "kind",
                      "ms"), w=8)
    layout.add(by_tag("WebSocket closes by code", 'sum("closes")', "websocket_closes", of_service,
                      "code", "short"), w=8)
    layout.add(timeseries("CPU (% of the service's limit)", [target(
        per_service_sum("resources", "cpu_percent").replace(
            "WHERE $timeFilter", f"WHERE {SERVICE} AND $timeFilter"),
        alias="$tag_service")], "percent", "cpu"), w=8)
    layout.add(timeseries("Memory (MB)", [target(
        per_service_sum("resources", "memory_mb").replace(
            "WHERE $timeFilter", f"WHERE {SERVICE} AND $timeFilter"),
        alias="$tag_service")], "decmbytes"), w=8)
    layout.add(timeseries("Threads and open files", [target(
        'SELECT mean("threads") AS "threads", mean("open_fds") AS "open fds" FROM '
        f'"resources" WHERE {SERVICE} AND $timeFilter GROUP BY time($__interval), "pid" '
        "fill(none)", alias="$tag_pid $col")], "short"), w=8)
    layout.add(timeseries("Browser-side API timing p95 (worst scrape in each bin)", [target(
        f'SELECT max("duration_p95_ms") FROM "client_requests" WHERE {where} '
        'GROUP BY time($__interval), "endpoint" fill(none)', alias="$tag_endpoint")], "ms",
        "p95", "Timed in users' browsers by promflux-fetch.js. The highest p95 of any one "
        "scrape interval in the bin: these timings keep no buckets in InfluxDB."), w=24)
    return dashboard("promflux-service", "promflux: service detail", layout.panels, variables(
        # every service, workers without HTTP routes too
        query_variable("service", 'SHOW TAG VALUES FROM "resources" WITH KEY = "service"'),
        query_variable("endpoint", 'SHOW TAG VALUES FROM "performance_metrics" WITH KEY = '
                                   '"endpoint" WHERE "service" =~ /^$service$/', True)),
        "now-1h")


def trends() -> dict[str, Any]:
    layout = Layout()
    for rp, label, width, bin_ in (("hourly_30d", "hourly", "now-30d", "1h"),
                                   ("daily_90d", "daily", "now-90d", "1d")):
        minutes = 60 if bin_ == "1h" else 1440
        # The trend rows hold each period's p95 of all its requests, every instance's
        # buckets summed (a roll-up row is one instance's): one row per bin, as it is.
        period = "hour" if bin_ == "1h" else "day"
        layout.add(timeseries(f"p95 ({label}, exact from summed buckets)", [target(
            f'SELECT last("p95_ms") AS "p95" FROM "daily_90d"."performance_trends" WHERE '
            f"{SERVICE} AND {ALL_ROW} AND \"period\" = '{period}' AND $timeFilter GROUP BY "
            f'time({bin_}), "service" fill(none)', alias="$tag_service $col")], "ms",
            "p95", f"Every instance together, per {period}; set the range up to {width}."))
        # One roll-up row per bin: the bin is the roll-up's period, so the mean rate is
        # the period's summed requests over its minutes.
        layout.add(timeseries(f"Requests per minute ({label}: mean and peak)", [target(
            f'SELECT sum("requests") / {minutes} AS "mean", max("requests_per_minute_max") AS '
            f'"peak" FROM "{rp}"."performance_metrics" WHERE {SERVICE} AND {ALL_ROW} AND '
            f'$timeFilter GROUP BY time({bin_}), "service" fill(none)',
            alias="$tag_service $col")], "reqpm"))
        layout.add(timeseries(f"Error rate ({label}, summed errors / summed requests)", [
            target(f'SELECT 100 * sum("errors") / sum("requests") AS "5xx", '
                   f'100 * sum("client_errors") / sum("requests") AS "4xx" FROM '
                   f'"{rp}"."performance_metrics" WHERE {SERVICE} AND {ALL_ROW} AND '
                   f'$timeFilter GROUP BY time({bin_}), "service" fill(none)',
                   alias="$tag_service $col")], "percent", "error"))
        layout.add(timeseries(f"p95 by endpoint ({label}, exact from summed buckets)", [
            target(f'SELECT last("p95_ms") FROM "daily_90d"."performance_trends" WHERE '
                   f"{SERVICE} AND \"endpoint\" != '_all' AND \"period\" = '{period}' AND "
                   f'$timeFilter GROUP BY time({bin_}), "endpoint", "method" fill(none)',
                   alias="$tag_method $tag_endpoint")],
            "ms", "p95", "Each roll-up period's exact p95 per endpoint: where a regression "
            "starts."))
    hours = f"{SERVICE} AND {ALL_ROW} AND \"period\" = 'hour' AND $timeFilter"
    # One trend row per hour, drawn as it is: a percent change is a ratio, and a mean of
    # hourly changes is not the change of any period (never averaged over wider bins).
    for title, field in (("Week over week: p95 change (per hour)", "p95_change_week_percent"),
                         ("Week over week: throughput change (per hour)",
                          "requests_change_week_percent"),
                         ("p95 against the 7-day baseline for the same hour",
                          "p95_change_baseline_percent")):
        layout.add(by_tag(title, f'last("{field}")', "performance_trends", hours, "service",
                          "percent", rp="daily_90d", bin_="1h"))
    layout.add(timeseries("p95 slope (ms per day, least squares)", [target(
        'SELECT last("p95_ms_slope_7d_per_day") AS "7 d", last("p95_ms_slope_30d_per_day") '
        'AS "30 d" FROM "daily_90d"."performance_trends" WHERE '
        f"{SERVICE} AND {ALL_ROW} AND \"period\" = 'day' AND $timeFilter "
        'GROUP BY time($__interval), "service" fill(none)', alias="$tag_service $col")], "ms"))
    layout.add(timeseries("CPU and memory (hourly mean and max)", [target(
        'SELECT mean("cpu_percent") AS "CPU mean", max("cpu_percent_max") AS "CPU max", '
        'mean("memory_percent") AS "memory mean", max("memory_percent_max") AS "memory max" '
        f'FROM "hourly_30d"."resources" WHERE {SERVICE} AND $timeFilter '
        'GROUP BY time($__interval), "service" fill(none)', alias="$tag_service $col")],
        "percent", "cpu"), w=24)
    return dashboard("promflux-trends", "promflux: trends", layout.panels, variables(
        query_variable("service", 'SHOW TAG VALUES FROM "performance_metrics" WITH KEY = '
                                  '"service"', True)), "now-7d")


DASHBOARDS = {"overview": overview, "service": service_detail, "trends": trends}


def build() -> dict[str, str]:
    """file name -> JSON text, as committed."""
    return {f"promflux-{name}.json": json.dumps(make(), indent=2, sort_keys=True) + "\n"
            for name, make in DASHBOARDS.items()}


def main() -> None:
    built = build()
    if "--check" in sys.argv:
        stale = [n for n, text in built.items()
                 if not (OUT / n).exists() or (OUT / n).read_text() != text]
        if stale:
            sys.exit(f"out of date (run python grafana/build.py): {', '.join(stale)}")
        return
    OUT.mkdir(exist_ok=True)
    for name, text in built.items():
        (OUT / name).write_text(text)
        print(f"wrote {OUT / name}")


if __name__ == "__main__":
    main()
