"""The bridge's status page: server-rendered HTML with inline SVG charts. Pure, no I/O.

No front-end build and no external asset: the page works offline. It refreshes its
``<main>`` every ``refresh_s`` seconds through the promflux fetch wrapper (whose timings
go back to the bridge), and with a meta refresh when scripts are off.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import urlencode

from ..analyze.overview import (
    RECENT_MS,
    CountRow,
    EndpointFigures,
    JobFigures,
    ServiceFigures,
    StateChange,
)
from ..analyze.thresholds import DEFAULTS, Level, Threshold
from .charts import line_chart

COLOURS = {"ok": "#1a7f37", "warning": "#b35900", "critical": "#c62828",
            "regression": "#8250df", "none": "#6e7781", "unjudged": "#1f2328"}
_LEGEND = (("ok", "within its limit"), ("warning", "over the warning limit"),
           ("critical", "over the critical limit, or down"),
           ("regression", "a regression against its baseline"),
           ("unjudged", "no limit set for it"), ("none", "no current data"))


@dataclass
class TargetRow:
    service: str
    url: str
    up: bool
    last_scrape: float | None
    duration_ms: float | None
    samples: int
    last_error: str


@dataclass
class StateRow:
    """A threshold state for the page (from the threshold evaluator)."""

    service: str
    endpoint: str
    metric: str
    level: str
    value: float | None
    since: float
    limit: str = ""  # the limit that applies, or the baseline of a regression


def _age(then: float | None, now: float) -> str:
    if then is None:
        return "never"
    seconds = max(0, int(now - then))
    return f"{seconds} s ago" if seconds < 120 else f"{seconds // 60} min ago"


def _number(value: float | None, unit: str, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}{unit}"


def figure_level(name: str, value: float | None, thresholds: dict[str, Threshold]) -> Level | str:
    """A figure's colour: none without a value, else its threshold's level; "unjudged"
    where no limit is in force (never green for a figure nothing judges, such as the 4xx
    share unless ``client_error_rate_percent`` is configured)."""
    threshold = thresholds.get(name)
    if value is None:
        return "none"
    if threshold is None or threshold.active_only:
        return "unjudged"
    return threshold.level(value)


def _figure(name: str, label: str, value: float | None, unit: str,
            thresholds: dict[str, Threshold], digits: int = 1, stale: str = "") -> str:
    """One figure; ``stale`` ("3 min ago"): not current, shown grey with its age."""
    level = "none" if stale else figure_level(name, value, thresholds)
    age = f'<span class="age">as of {stale}</span>' if stale and value is not None else ""
    marker = ' data-stale="true"' if stale else ""
    return (f'<div class="figure" data-figure="{name}" data-level="{level}"{marker}>'
            f'<span class="label">{label}</span>'
            f'<span class="value" style="color:{COLOURS[level]}">'
            f'{_number(value, unit, digits)}</span>{age}</div>')


def _stale(at_ms: int | None, now: float, fresh_s: float) -> str:
    """"" while a figure written at ``at_ms`` is current, else its age."""
    if at_ms is None or now - at_ms / 1000 <= fresh_s:
        return ""
    return _age(at_ms / 1000, now)


def _span(ms: float) -> str:
    """The time a windowed figure covers, for its label: "5 min", "40 s"."""
    if ms >= 0.95 * RECENT_MS:
        return f"{RECENT_MS // 60_000} min"
    return f"last {ms / 1000:.0f} s" if ms < 120_000 else f"last {ms / 60_000:.0f} min"


def endpoint_link(service: str, endpoint: str, method: str, range_: str = "1h") -> str:
    """The endpoint page's address (``/endpoint``)."""
    return "/endpoint?" + urlencode({"service": service, "endpoint": endpoint,
                                     "method": method, "range": range_})


def _endpoints_table(service: str, rows: Sequence[EndpointFigures],
                     thresholds: dict[str, Threshold], p95_limit: float | None) -> str:
    if not rows:
        return ""
    limit = f"{p95_limit:g} ms" if p95_limit else "the limit"
    body = "".join(
        f'<tr data-endpoint="{escape(e.method)} {escape(e.endpoint)}">'
        f'<td><a href="{escape(endpoint_link(service, e.endpoint, e.method))}">'
        f"{escape(e.method)} {escape(e.endpoint)}</a></td><td>{e.requests:,.0f}</td>"
        + _cell("p95_ms", e.p95_ms, " ms", thresholds)
        + _cell("within", e.within_limit_percent, " %", {}, 1,
                None if e.within_limit_percent is None else
                ("ok" if e.within_limit_percent >= 95 else "critical"))
        + _cell("error_rate_percent", e.error_rate_percent, " %", thresholds, 2)
        + _cell("client_error_rate_percent", e.client_error_rate_percent, " %", thresholds, 2)
        + "</tr>" for e in rows)
    return ('<table class="endpoints"><caption>Endpoints, last 5 minutes (exact: from summed '
            "counts and buckets)</caption><thead><tr><th>Endpoint</th><th>Requests</th>"
            f"<th>p95</th><th>Within {limit}</th><th>5xx</th><th>4xx</th></tr></thead>"
            f"<tbody>{body}</tbody></table>")


def _jobs_table(rows: Sequence[JobFigures], thresholds: dict[str, Threshold]) -> str:
    if not rows:
        return ""
    body = "".join(
        f'<tr data-job="{escape(j.job)}"><td>{escape(j.job)}</td><td>{j.runs:,.0f}</td>'
        + _cell("job_failure_percent", j.failure_percent, " %", thresholds, 1)
        + _cell("job_p95_ms", j.p95_ms, " ms", {}, 1)
        + _cell("job_stale_seconds", j.seconds_since_success, " s", thresholds, 0)
        + f"<td>{_number(j.in_progress, '', 0)}</td></tr>" for j in rows)
    return ('<table class="jobs"><caption>Jobs, last 5 minutes (exact: from summed counts '
            "and buckets)</caption><thead><tr><th>Job</th><th>Runs</th><th>Failed</th>"
            "<th>p95 duration</th><th>Since last success</th><th>Running</th></tr></thead>"
            f"<tbody>{body}</tbody></table>")


def _counts_table(rows: Sequence[CountRow], caption: str, label: str, p95: bool) -> str:
    if not rows:
        return ""
    body = "".join(
        f'<tr data-route="{escape(r.route)}" data-label="{escape(r.label)}">'
        f"<td>{escape(r.route)}</td><td>{escape(r.label)}</td><td>{r.count:,.0f}</td>"
        + (f"<td>{_number(r.p95_ms, ' ms')}</td>" if p95 else "") + "</tr>" for r in rows)
    head = (f"<th>Route</th><th>{label}</th><th>Count</th>"
            + ("<th>p95 (worst scrape)</th>" if p95 else ""))
    return (f'<table class="counts"><caption>{caption}, last 5 minutes</caption><thead><tr>'
            f"{head}</tr></thead><tbody>{body}</tbody></table>")


def _http_figures(f: ServiceFigures, thresholds: dict[str, Threshold], now: float,
                  fresh_s: float) -> str:
    span, stale = _span(f.rpm_span_ms), _stale(f.requests_ms, now, fresh_s)
    # The last scrape with requests, while it is recent: never minutes after traffic stopped.
    recent = f.p95_at_ms is not None and now - f.p95_at_ms / 1000 <= fresh_s
    return (_figure("p95_ms", "p95, last scrape with requests", f.p95_ms if recent else None,
                    " ms", thresholds, stale=stale)
            + _figure("requests_per_minute", f"requests/min, {span}", f.requests_per_minute,
                      "", thresholds, stale=stale)
            + _figure("error_rate_percent", f"5xx errors, {span}", f.error_rate_percent,
                      " %", thresholds, 2, stale=stale)
            + _figure("client_error_rate_percent", f"4xx answers, {span}",
                      f.client_error_rate_percent, " %", thresholds, 2, stale=stale))


def _service_note(service: str, targets: Sequence[TargetRow], f: ServiceFigures,
                  now: float) -> str:
    """Why a service's figures are not current: it is down, or no longer a target."""
    mine = [t for t in targets if t.service == service]
    if mine and any(t.up or t.last_scrape is None for t in mine):
        return ""
    seen = max((m for m in (f.requests_ms, f.resources_ms, f.disk_ms) if m is not None),
               default=None)
    last = "no data stored" if seen is None else f"last data {_age(seen / 1000, now)}"
    why = "down" if mine else "no longer a target"
    return f'<p class="stale-note" data-stale="true">{why} · {last}</p>'


def _charts(service: str, f: ServiceFigures, thresholds: dict[str, Threshold],
            end_ms: int) -> str:
    """p95, requests per minute and the 5xx share over the last hour, each point one
    scrape's exact figure; the limits in force as dashed lines."""
    start = end_ms - 3_600_000
    p95 = thresholds.get("p95_ms")
    errors = thresholds.get("error_rate_percent")
    charts = (
        (f.p95_series, "p95", " ms", p95.warning if p95 else None, 0),
        (f.rpm_series, "requests/min", "", None, 1),
        (f.error_series, "5xx errors", " %", errors.warning if errors else None, 2))
    return '<div class="charts">' + "".join(
        f'<figure data-chart="{label}">'
        + line_chart(points, title=f"{service} {label}, last hour", unit=unit,
                     start_ms=start, end_ms=end_ms, limit=limit, digits=digits)
        + f"<figcaption>{label}{unit and ' (' + unit.strip() + ')'}, each scrape, "
        + "last hour</figcaption></figure>"
        for points, label, unit, limit, digits in charts) + "</div>"


def _other_tables(service: str, counts: dict[str, dict[str, list[CountRow]]]) -> str:
    """WebSocket messages and closes, and browser-timed calls, of one service."""
    return (_counts_table(counts.get("messages", {}).get(service, []),
                          "WebSocket messages handled", "Kind", True)
            + _counts_table(counts.get("closes", {}).get(service, []),
                            "WebSocket connections closed", "Close code", False)
            + _counts_table(counts.get("browser", {}).get(service, []),
                            "API calls timed in browsers", "Method", True))


def _cell(name: str, value: float | None, unit: str, thresholds: dict[str, Threshold],
          digits: int = 1, level: str | None = None) -> str:
    level = figure_level(name, value, thresholds) if level is None else level
    return (f'<td data-figure="{name}" data-level="{level}" '
            f'style="color:{COLOURS.get(level, COLOURS["none"])}">'
            f"{_number(value, unit, digits)}</td>")


def _changes_table(changes: Sequence[StateChange], now: float) -> str:
    rows = "".join(
        f'<tr data-level="{escape(c.level)}"><td>{_age(c.at_ms / 1000, now)}</td>'
        f"<td>{escape(c.service)}</td><td>{escape(c.endpoint)}</td><td>{escape(c.metric)}</td>"
        f"<td>{escape(c.previous)} → "
        f'<span style="color:{COLOURS.get(c.level, COLOURS["none"])}">{escape(c.level)}'
        f"</span></td><td>{_number(c.value, '')}</td></tr>" for c in changes)
    return ('<h2>Last state changes (24 h)</h2><table id="changes"><thead><tr><th>When</th>'
            "<th>Service</th><th>Endpoint</th><th>Figure</th><th>Change</th><th>Value</th>"
            f"</tr></thead><tbody>{rows}</tbody></table>")


def _config_problems(health: dict[str, Any]) -> list[str]:
    """A refused reload and what discovery could not read, as alerts on the page."""
    out = []
    reload = health.get("reload") or {}
    if not reload.get("ok", True):
        out.append('<p class="error" id="reload-error" role="alert">Configuration reload '
                   f'refused (the previous one keeps running): {escape(reload["message"])}</p>')
    for problem in health.get("discovery_problems") or ():
        out.append(f'<p class="error discovery-error" role="alert">Discovery: '
                   f"{escape(problem)}</p>")
    return out


def render_main(targets: Sequence[TargetRow], figures: dict[str, ServiceFigures],
                states: Sequence[StateRow] = (), health: dict[str, Any] | None = None,
                thresholds: dict[str, Threshold] | None = None,
                now: float | None = None, influx_error: str = "",
                changes: Sequence[StateChange] = (),
                endpoints: dict[str, list[EndpointFigures]] | None = None,
                jobs: dict[str, list[JobFigures]] | None = None,
                counts: dict[str, dict[str, list[CountRow]]] | None = None,
                fresh_s: float = 60.0) -> str:
    """The page's ``<main>`` content (also served alone for the refresh). A figure older
    than ``fresh_s`` is shown grey with its age, never as current."""
    now = time.time() if now is None else now
    thresholds = DEFAULTS if thresholds is None else thresholds
    parts = [f'<p class="meta">Updated {time.strftime("%H:%M:%S", time.gmtime(now))} UTC']
    if health:
        parts.append(f" · InfluxDB schema {'ready' if health.get('schema_ready') else 'not ready'}"
                     f" · {health.get('buffer_batches', 0)} batches buffered")
    parts.append("</p>")
    parts.append('<p class="legend">' + "".join(
        f'<span data-level="{level}"><i style="background:{COLOURS[level]}"></i>{text}'
        "</span>" for level, text in _LEGEND) + "</p>")
    if influx_error:
        parts.append(f'<p class="error" role="alert">InfluxDB: {escape(influx_error)}</p>')
    parts += _config_problems(health or {})
    parts.append('<h2>Targets</h2><table id="targets"><thead><tr><th>Service</th><th>URL</th>'
                 "<th>State</th><th>Last scrape</th><th>Duration</th><th>Samples</th>"
                 "<th>Last error</th></tr></thead><tbody>")
    for t in targets:
        state = "up" if t.up else "down"
        parts.append(
            f'<tr data-service="{escape(t.service)}" data-up="{str(t.up).lower()}">'
            f"<td>{escape(t.service)}</td><td><a href=\"{escape(t.url)}\">{escape(t.url)}</a></td>"
            f'<td class="{state}" style="color:{COLOURS["ok" if t.up else "critical"]}">'
            f"{state}</td><td>{_age(t.last_scrape, now)}</td>"
            f"<td>{_number(t.duration_ms, ' ms')}</td><td>{t.samples}</td>"
            f'<td class="last-error">{escape(t.last_error)}</td></tr>')
    parts.append("</tbody></table>")
    if states:
        parts.append('<h2>Alerts</h2><table id="states"><thead><tr><th>Service</th>'
                     "<th>Endpoint</th><th>Figure</th><th>Level</th><th>Value</th>"
                     "<th>Limit or baseline</th><th>Since</th></tr></thead><tbody>")
        for s in states:
            parts.append(
                f'<tr data-level="{escape(s.level)}"><td>{escape(s.service)}</td>'
                f"<td>{escape(s.endpoint)}</td><td>{escape(s.metric)}</td>"
                f'<td style="color:{COLOURS.get(s.level, COLOURS["none"])}">'
                f"{escape(s.level)}</td><td>{_number(s.value, '')}</td>"
                f'<td class="limit">{escape(s.limit)}</td><td>{_age(s.since, now)}</td></tr>')
        parts.append("</tbody></table>")
    if changes:
        parts.append(_changes_table(changes, now))
    parts.append("<h2>Services (last hour)</h2>")
    services = [t.service for t in targets]
    services += sorted(s for s in figures if s not in services)
    for service in dict.fromkeys(services):
        parts.append(_service_section(service, figures.get(service, ServiceFigures()),
                                      targets, thresholds, now, fresh_s, endpoints or {},
                                      jobs or {}, counts or {}))
    return "".join(parts)


def _service_section(service: str, f: ServiceFigures, targets: Sequence[TargetRow],
                     thresholds: dict[str, Threshold], now: float, fresh_s: float,
                     endpoints: dict[str, list[EndpointFigures]],
                     jobs: dict[str, list[JobFigures]],
                     counts: dict[str, dict[str, list[CountRow]]]) -> str:
    """One service's card: its figures (grey when not current), charts and tables."""
    p95_limit = thresholds["p95_ms"].warning if "p95_ms" in thresholds else None
    # A worker (no HTTP routes) shows its resources and jobs, not empty request cards.
    http = (any(v is not None for v in (f.p95_ms, f.requests_per_minute,
                                        f.error_rate_percent))
            or bool(f.rpm_series or f.p95_series or endpoints.get(service)))
    note = _service_note(service, targets, f, now)
    resources = _stale(f.resources_ms, now, fresh_s)
    disk = _stale(f.disk_ms, now, fresh_s)
    return (
        f'<section class="service{" stale" if note else ""}" '
        f'data-service="{escape(service)}">'
        f"<h3>{escape(service)}</h3>{note}<div class=\"figures\">"
        + (_http_figures(f, thresholds, now, fresh_s) if http else "")
        + _figure("cpu_percent", "CPU of limit, now", f.cpu_percent, " %", thresholds,
                  stale=resources)
        + _figure("memory_mb", "memory used, now", f.memory_mb, " MB", {}, 0, stale=resources)
        + _figure("memory_percent", "memory of limit, now", f.memory_percent, " %",
                  thresholds, stale=resources)
        + _figure("disk_percent", "disk used, now", f.disk_percent, " %", thresholds,
                  stale=disk)
        + "</div>"
        + (_charts(service, f, thresholds, int(now * 1000)) if http else "")
        + _endpoints_table(service, endpoints.get(service, []), thresholds, p95_limit)
        + _jobs_table(jobs.get(service, []), thresholds)
        + _other_tables(service, counts)
        + "</section>")


STYLE = """
body{font:14px system-ui,sans-serif;margin:1.5rem;color:#1f2328}
table{border-collapse:collapse;margin-bottom:1rem}th,td{padding:.3rem .7rem;text-align:left;
border-bottom:1px solid #d0d7de}.service{border:1px solid #d0d7de;border-radius:6px;
padding:.5rem 1rem;margin:.7rem 0}.figures{display:flex;flex-wrap:wrap;gap:1.2rem}
.figure{display:flex;flex-direction:column}.label{color:#6e7781;font-size:12px}
.value{font-size:20px;font-weight:600}.charts{display:flex;gap:1.5rem;margin-top:.5rem}
.chart{background:#f6f8fa;border-radius:3px}.legend{display:flex;flex-wrap:wrap;gap:1rem;
font-size:12px;color:#57606a}.legend i{display:inline-block;width:.7rem;height:.7rem;
border-radius:2px;margin-right:.3rem;vertical-align:-1px}.charts{flex-wrap:wrap}.meta{color:#6e7781}figure{margin:0}figcaption{color:#6e7781;font-size:12px}.error{color:#c62828}.last-error{max-width:28rem;color:#c62828}
.stale{background:#f6f8fa;color:#6e7781}.stale-note,.age{color:#6e7781;font-size:12px}
"""


def render_page(main: str, refresh_s: float) -> str:
    """The whole document around ``render_main``'s content."""
    refresh_ms = int(refresh_s * 1000)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>promflux bridge</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<noscript><meta http-equiv="refresh" content="{int(refresh_s)}"></noscript>
<style>{STYLE}</style>
<script src="/static/promflux-fetch.js"></script></head>
<body><h1>promflux bridge</h1><main id="main">{main}</main>
<script>
promflux.install({{endpoint: "/api/client-timings", routes: ["/", "/api/targets",
  "/api/status"]}});
setInterval(async () => {{
  try {{
    const response = await fetch("/?part=main");
    if (response.ok) document.getElementById("main").innerHTML = await response.text();
  }} catch (e) {{ /* the bridge restarting: try again next time */ }}
}}, {refresh_ms});
</script></body></html>"""
