"""The status page's pure parts: the overview reduction, thresholds and the HTML."""

from __future__ import annotations

from promflux.bridge.analyze.overview import ServiceFigures, reduce
from promflux.bridge.analyze.thresholds import DEFAULTS, Threshold, worst
from promflux.bridge.serve.status_page import StateRow, TargetRow, render_main
from promflux.bridge.store.influxql.overview import named

NOW_MS = 1_800_000_000_000


def series(service, columns, rows, **tags):
    return {"name": "m", "tags": {"service": service, **tags}, "columns": ["time", *columns],
            "values": rows}


def test_reduce_takes_last_p95_recent_rates_and_sums_processes():
    performance = {"series": [series("api", ["p95_ms", "requests_per_minute", "requests",
                                             "errors"], [
        [NOW_MS - 600_000, 900.0, 10.0, 100.0, 50.0],   # older than 5 min: not "current"
        [NOW_MS - 30_000, 120.0, 60.0, 15.0, 1.0],
        [NOW_MS - 15_000, None, 0.0, 0.0, 0.0],          # no requests: no p95
        [NOW_MS, 80.0, 20.0, 5.0, 0.0]])]}
    resources = {"series": [
        series("api", ["cpu_percent", "memory_mb", "memory_percent"],
               [[NOW_MS - 15_000, 99.0, 1.0, 1.0], [NOW_MS, 30.0, 100.0, 2.5]], pid="1"),
        series("api", ["cpu_percent", "memory_mb", "memory_percent"],
               [[NOW_MS, 12.5, 50.0, 1.5]], pid="2"),
        series("api", ["cpu_percent", "memory_mb", "memory_percent"],  # exited a while ago
               [[NOW_MS - 600_000, 70.0, 400.0, 9.0]], pid="3")]}
    disk = {"series": [series("api", ["last"], [[0, 42.0]])]}
    figures = reduce(named([performance, resources, disk]))["api"]
    assert figures.p95_ms == 80.0
    assert figures.requests_per_minute == (60.0 + 0.0 + 20.0) / 3
    assert figures.error_rate_percent == 100.0 * 1 / 20
    assert (figures.cpu_percent, figures.memory_mb, figures.memory_percent) == (42.5, 150.0, 4.0)
    assert figures.disk_percent == 42.0
    assert len(figures.p95_series) == 3 and len(figures.rpm_series) == 4
    assert reduce(named([{}, {}, {}])) == {}


def test_threshold_levels_follow_the_seed():
    p95 = DEFAULTS["p95_ms"]
    assert [p95.level(v) for v in (None, 499.9, 500.0, 999.0, 1000.0)] == [
        "ok", "ok", "warning", "warning", "critical"]
    throughput = DEFAULTS["requests_per_minute"]
    assert [throughput.level(v) for v in (20.0, 10.0, 9.9, 1.0)] == [
        "ok", "ok", "warning", "critical"]
    assert Threshold("x", 1, 2).level(float("nan")) == "ok"
    assert worst(["ok", "critical", "warning"]) == "critical" and worst([]) == "ok"


def test_render_colours_breaches_and_escapes_everything_a_target_sends():
    hostile = '<script>alert("x")</script>'
    targets = [TargetRow(hostile, "http://h/metrics?a=<b>", False, None, None, 0,
                         "</td><img src=x onerror=alert(1)>")]
    figures = {hostile: ServiceFigures(p95_ms=750.0, p95_at_ms=NOW_MS, error_rate_percent=12.0,
                                       cpu_percent=50.0)}
    html = render_main(targets, figures, [StateRow(hostile, "/x", "p95_ms", "warning", 750.0,
                                                  NOW_MS / 1000)], now=NOW_MS / 1000)
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html
    assert 'data-figure="p95_ms" data-level="warning"' in html
    assert 'data-figure="error_rate_percent" data-level="critical"' in html
    assert 'data-figure="cpu_percent" data-level="ok"' in html
    assert 'data-figure="memory_mb" data-level="none"' in html  # no data is not "ok"
    assert 'id="states"' in html


def test_charts_have_axes_units_a_labelled_limit_and_values_on_hover():
    import re

    from promflux.bridge.serve.charts import LEFT, RIGHT, line_chart, nice_top

    assert [nice_top(v) for v in (0.7, 1, 1.3, 3, 4.2, 7, 730, 0)] == [
        0.8, 1, 1.5, 3, 5, 8, 800, 1]
    end = 86_400_000 * 400 + 3_600_000  # 01:00 UTC
    svg = line_chart([(end - 3_600_000, 0.0), (end - 1_800_000, 480.0), (end, 120.0)],
                     title="api p95", unit=" ms", start_ms=end - 3_600_000, end_ms=end,
                     limit=500.0, width=480, height=150)
    assert re.findall(r'class="y-label"[^>]*>([^<]*)<', svg) == ["0 ms", "300 ms", "600 ms"]
    assert re.findall(r'class="x-label"[^>]*>([^<]*)<', svg) == ["−60 min", "−30 min", "now"]
    assert "limit 500 ms" in svg
    hovers = re.findall(r'<circle class="point"[^>]*><title>([^<]*)</title>', svg)
    assert hovers == ["00:00:00 UTC: 0.0 ms", "00:30:00 UTC: 480.0 ms", "01:00:00 UTC: 120.0 ms"]
    xs = [float(x) for x in re.findall(r'<circle class="point" cx="([\d.]+)"', svg)]
    assert xs == [LEFT, LEFT + (480 - LEFT - RIGHT) / 2, 480 - RIGHT]
    assert "no data" in line_chart([], title="t", unit="", start_ms=0, end_ms=1)


def test_endpoint_rows_are_exact_from_summed_counts_and_buckets():
    from promflux.bridge.analyze.overview import endpoints
    from promflux.bridge.analyze.quantile import normalize, quantile

    sums = {"series": [
        {"name": "performance_metrics", "columns": ["time", "requests", "errors",
                                                    "client_errors", "within"],
         "tags": {"service": "api", "endpoint": "/slow", "method": "GET"},
         "values": [[0, 200.0, 4.0, 10.0, 121.0]]},
        {"name": "performance_metrics", "columns": ["time", "requests", "errors",
                                                    "client_errors", "within"],
         "tags": {"service": "api", "endpoint": "/idle", "method": "GET"},
         "values": [[0, 0.0, 0.0, 0.0, 0.0]]}]}
    # Cumulative sums over the 5 minutes: 121 of 200 within 0.5 s (a mean of per-interval
    # p95s would have shown far less than the true p95 here).
    cumulative = {0.1: 100.0, 0.5: 121.0, 1.0: 200.0, float("inf"): 200.0}
    buckets = {"series": [  # as InfluxDB sums the bucket fields: each bucket's own requests
        {"name": "latency_buckets",
         "columns": ["time", "sum_le_0.1", "sum_le_0.5", "sum_le_1.0", "sum_le_+Inf"],
         "tags": {"service": "api", "endpoint": "/slow", "method": "GET"},
         "values": [[0, 100.0, 21.0, 79.0, None]]}]}
    rows = endpoints(named([{}, {}, {}, {}, sums, buckets]))["api"]
    assert len(rows) == 1  # no requests, no row
    row = rows[0]
    assert row.p95_ms == 1000 * quantile(0.95, normalize(cumulative.items()))
    assert (row.requests, row.within_limit_percent, row.error_rate_percent,
            row.client_error_rate_percent) == (200, 60.5, 2.0, 5.0)
    html = render_main([TargetRow("api", "http://x/metrics", True, None, None, 0, "")], {},
                       endpoints={"api": rows}, now=NOW_MS / 1000)
    assert 'data-endpoint="GET /slow"' in html and "Within 500 ms" in html
    assert 'data-figure="within" data-level="critical"' in html  # 60.5 % < 95 %
    assert 'data-figure="p95_ms" data-level="warning"' in html  # 968 ms, over 500 ms


def test_requests_per_minute_is_summed_requests_over_the_time_they_cover():
    # 30 requests in a 30 s interval, then 1 in a 5 s one: 31 in 35 s, not the mean of
    # the two rates (36/min).
    performance = {"series": [series("api", ["p95_ms", "requests_per_minute", "requests",
                                             "errors"], [
        [NOW_MS - 5_000, 10.0, 60.0, 30.0, 0.0],
        [NOW_MS, 10.0, 12.0, 1.0, 0.0]])]}
    figures = reduce(named([performance, {}, {}]))["api"]
    assert figures.requests_per_minute == 31 * 60 / 35


def _figure_html(html: str, name: str, service: str) -> str:
    sections = [part for part in html.split("<section")[1:]
                if f'data-service="{service}"' in part.split(">", 1)[0]]
    section = sections[0]
    start = section.index(f'data-figure="{name}"')
    return section[start:section.index("</div>", start)]


def test_figures_of_a_down_or_removed_service_are_grey_with_their_age():
    perf = ["p95_ms", "requests_per_minute", "requests", "errors"]
    res = ["cpu_percent", "memory_mb", "memory_percent"]
    old = NOW_MS - 1_800_000  # 30 min before now
    results = [
        {"series": [series("gone", perf, [[old - 15_000, 70.0, 40.0, 10.0, 0.0],
                                          [old, 73.75, 4.0, 1.0, 0.0]]),
                    series("api", perf, [[NOW_MS - 20_000, 50.0, 12.0, 4.0, 0.0],
                                         [NOW_MS, None, 0.0, 0.0, 0.0]])]},
        {"series": [series("gone", res, [[old, 35.0, 120.0, 20.0]], pid="1"),
                    series("down", res, [[old, 90.0, 300.0, 85.0]], pid="1"),
                    series("api", res, [[NOW_MS, 10.0, 50.0, 5.0]], pid="1")]},
        {"series": [series("api", ["last"], [[NOW_MS, 40.0]])]}]
    figures = reduce(named(results))
    targets = [TargetRow("api", "http://a/metrics", True, NOW_MS / 1000, 3.0, 10, ""),
               TargetRow("down", "http://d/metrics", False, NOW_MS / 1000, 3.0, 0, "refused")]
    html = render_main(targets, figures, now=NOW_MS / 1000, fresh_s=60.0)
    # A removed service: grey, with when its figures were written, and why.
    gone_cpu = _figure_html(html, "cpu_percent", "gone")
    assert 'data-level="none"' in gone_cpu and "as of 30 min ago" in gone_cpu
    assert "no longer a target · last data 30 min ago" in html
    # A service that is down: its old 90 % CPU is not shown in colour as "now".
    down_cpu = _figure_html(html, "cpu_percent", "down")
    assert 'data-stale="true"' in down_cpu and "#c62828" not in down_cpu
    assert "down · last data 30 min ago" in html
    # A current service: coloured, no age; its p95 is the last scrape with requests (20 s
    # ago); its requests/min covers 40 s (two rows) and says so.
    api_cpu = _figure_html(html, "cpu_percent", "api")
    assert "data-stale" not in api_cpu and 'data-level="ok"' in api_cpu
    assert "50.0 ms" in _figure_html(html, "p95_ms", "api")
    # The removed service's p95 is from 30 minutes ago: not shown as a current figure.
    assert "73.8" not in _figure_html(html, "p95_ms", "gone")
    later = render_main(targets, figures, now=NOW_MS / 1000 + 120, fresh_s=60.0)
    assert "50.0" not in _figure_html(later, "p95_ms", "api")  # 140 s without requests
    rpm = _figure_html(html, "requests_per_minute", "api")
    assert "requests/min, last 40 s" in rpm and "6.0" in rpm
