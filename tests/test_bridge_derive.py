"""Scrapes -> points: percentiles, rates, restarts, with answers worked out by hand."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from promflux.bridge.analyze.derive import TargetDeriver
from promflux.bridge.ingest.exposition import parse

BOUNDS = ["0.1", "0.25", "0.5", "1.0", "+Inf"]


def exposition(counts: dict[tuple[str, str, str], list[int]], total: float = 0.0,
               start: float = 1000.0, events: float = 0.0, cpu: float = 12.5,
               rss: float = 50.0) -> str:
    """Our exporter's text: per (route, method, status) the cumulative bucket counts; the
    first series has latency sum ``total``, the others 1 s per request."""
    lines = ["# TYPE http_request_duration_seconds histogram"]
    for i, ((route, method, status), cumulative) in enumerate(counts.items()):
        labels = f'method="{method}",route="{route}",service="api",status="{status}"'
        for le, c in zip(BOUNDS, cumulative, strict=True):
            lines.append(f'http_request_duration_seconds_bucket{{{labels},le="{le}"}} {c}')
        lines.append(f"http_request_duration_seconds_count{{{labels}}} {cumulative[-1]}")
        latency_sum = total if i == 0 else float(cumulative[-1])
        lines.append(f"http_request_duration_seconds_sum{{{labels}}} {latency_sum}")
    lines.append(f"process_start_time_seconds {start}")
    lines.append(f'events_processed_total{{kind="update",service="api"}} {events}')
    lines.append(f'service_cpu_seconds_total{{pid="7",service="api"}} {cpu}')
    lines.append('service_cpu_limit_cores{service="api"} 2')
    lines.append(f'service_memory_rss_bytes{{pid="7",service="api"}} {rss * 2**20}')
    return "\n".join(lines) + "\n"


def run(deriver: TargetDeriver, text: str, ts: float) -> list:
    return deriver.derive(parse(text, deriver.cache), ts)


def rows(points: list, measurement: str) -> dict:
    return {tuple(sorted(t.items())): f for m, t, f, _ in points if m == measurement}


def perf(points: list, endpoint: str = "/items/{id}", method: str = "GET") -> dict:
    return rows(points, "performance_metrics")[
        (("endpoint", endpoint), ("method", method), ("service", "api"))]


def test_first_scrape_is_a_baseline_then_percentiles_and_rates():
    d = TargetDeriver("api")
    first = run(d, exposition({("/items/{id}", "GET", "200"): [500, 600, 700, 800, 900]},
                              total=100.0), 100.0)
    assert "performance_metrics" not in {m for m, *_ in first}
    assert rows(first, "resources") == {(("pid", "7"), ("service", "api")): {"memory_mb": 50.0}}
    # 15 s later: 100 more requests: 50 <= 0.1 s, 40 in (0.1, 0.25], 10 in (0.25, 0.5].
    points = run(d, exposition({("/items/{id}", "GET", "200"): [550, 690, 800, 900, 1000],
                                ("/items/{id}", "GET", "503"): [0, 0, 0, 0, 5]},
                               total=112.0, cpu=27.5), 115.0)
    # 15 CPU seconds in 15 s, of 2 cores: 50 % (the gauge's point has the same tags).
    resources = [f for m, t, f, _ in points if m == "resources"]
    assert {"cpu_percent": 50.0} in resources and {"memory_mb": 50.0} in resources
    row = perf(points)
    assert row["requests"] == 105 and row["requests_per_minute"] == pytest.approx(420)
    assert row["errors"] == 5 and row["error_rate_percent"] == pytest.approx(100 * 5 / 105)
    # Bucket increases over both statuses: 0.1: 50, 0.25: 90, 0.5: 100, 1: 100, +Inf: 105.
    assert row["p50_ms"] == pytest.approx(1000 * (0.1 + 0.15 * (52.5 - 50) / 40))   # 109.375
    assert row["p90_ms"] == pytest.approx(1000 * (0.25 + 0.25 * (94.5 - 90) / 10))  # 362.5
    assert row["p95_ms"] == pytest.approx(1000 * (0.25 + 0.25 * (99.75 - 90) / 10))  # 493.75
    assert row["p99_ms"] == 1000.0  # rank 103.95 is in +Inf: the highest finite bound
    assert row["response_time_ms"] == pytest.approx((12.0 + 5.0) / 105 * 1000)
    statuses = rows(points, "status_codes")
    assert statuses[(("endpoint", "/items/{id}"), ("method", "GET"), ("service", "api"),
                     ("status", "503"))]["requests"] == 5
    buckets = rows(points, "latency_buckets")
    row_of_endpoint = buckets[(("endpoint", "/items/{id}"), ("method", "GET"), ("service", "api"))]
    # One row per endpoint, one field per bucket: its own share 50, 40, 10, 0, 5 (the empty
    # bucket at 1.0 lies between non-empty ones, so it is kept as the +Inf bucket's bound).
    assert row_of_endpoint == {"le_0.1": 50, "le_0.25": 40, "le_0.5": 10, "le_1.0": 0,
                               "le_+Inf": 5}
    assert perf(points, "_all", "_all")["requests"] == 105


def test_restart_counts_from_zero_and_no_requests_means_no_percentiles():
    d = TargetDeriver("api")
    key = ("/items/{id}", "GET", "200")
    run(d, exposition({key: [10, 10, 10, 10, 10]}, events=40), 0.0)
    quiet = run(d, exposition({key: [10, 10, 10, 10, 10]}, events=40), 15.0)
    row = perf(quiet)
    assert row["requests"] == 0 and row["requests_per_minute"] == 0
    assert not any(k.startswith("p") or k == "error_rate_percent" for k in row)
    # The service restarted (new start time): its counters began again at zero.
    restarted = run(d, exposition({key: [3, 4, 4, 4, 4]}, start=2000.0, events=6), 30.0)
    assert perf(restarted)["requests"] == 4
    events = rows(restarted, "events")[(("kind", "update"), ("service", "api"))]
    assert events == {"events": 6, "events_per_minute": 24, "interval_s": 15.0}
    assert d.restarts == 1


def test_nan_gauges_are_not_written():
    d = TargetDeriver("api")
    points = run(d, exposition({}, rss=math.nan), 0.0)
    assert rows(points, "resources") == {}


def test_a_route_missing_from_one_scrape_is_not_a_spike_when_it_returns():
    d = TargetDeriver("api")
    a, b = ("/a", "GET", "200"), ("/b", "GET", "200")
    run(d, exposition({a: [1000] * 5, b: [10] * 5}), 0.0)
    run(d, exposition({b: [11] * 5}), 15.0)  # /a is missing from this scrape
    back = run(d, exposition({a: [1005] * 5, b: [12] * 5}), 30.0)
    assert perf(back, "/a")["requests"] == 5 and perf(back, "/b")["requests"] == 1


def test_a_wall_clock_step_changes_no_count_nor_rate():
    d = TargetDeriver("api")
    route = ("/items/{id}", "GET", "200")
    d.derive(parse(exposition({route: [0] * 5}), d.cache), 1000.0, 0.0)
    # The wall clock stepped back 20 s between two scrapes 15 s apart.
    points = d.derive(parse(exposition({route: [70] * 5}), d.cache), 995.0, 15.0)
    row = perf(points)
    assert row["requests"] == 70 and row["requests_per_minute"] == 280.0
    assert {ts for *_, ts in points} == {995_000}  # points keep the wall-clock time


@pytest.mark.parametrize("bad", ["-5", "NaN", "+Inf"])
def test_counter_values_no_counter_can_have_are_never_written(bad):
    d = TargetDeriver("api")
    route = ("/items/{id}", "GET", "200")
    run(d, exposition({route: [1, 2, 3, 4, 5]}, events=10), 0.0)
    text = exposition({route: [1, 2, 3, 4, 5]}, events=10).replace(
        'events_processed_total{kind="update",service="api"} 10',
        f'events_processed_total{{kind="update",service="api"}} {bad}')
    points = run(d, text, 15.0)
    for _, _, fields, _ in points:
        for value in fields.values():
            assert not isinstance(value, float) or (math.isfinite(value) and value >= 0), fields
    assert not rows(points, "events")  # no increase to write


def test_a_restarted_bridge_counts_on_from_the_saved_state():
    import json

    from promflux.bridge.ingest.resume import export_state, import_state

    route = ("/items/{id}", "GET", "200")
    before = TargetDeriver("api")
    assert export_state(before) is None  # nothing seen yet
    before.derive(parse(exposition({route: [10] * 5}), before.cache), 1000.0, 50.0)
    before.derive(parse(exposition({route: [40] * 5}), before.cache), 1015.0, 65.0)
    saved = json.loads(json.dumps(export_state(before)))  # as it goes through the file

    after = TargetDeriver("api")  # a new process: new clock, new objects
    assert import_state(after, saved, wall_now=1040.0, monotonic_now=7.0)
    points = after.derive(parse(exposition({route: [75] * 5}), after.cache), 1045.0, 12.0)
    row = perf(points)
    # 35 requests since the last scrape before the restart, over the 30 s between them.
    assert row["requests"] == 35 and row["requests_per_minute"] == 70.0

    stale = TargetDeriver("api")
    assert not import_state(stale, saved, wall_now=1015.0 + 3600, monotonic_now=0.0)
    assert not import_state(TargetDeriver("other"), saved, 1040.0, 0.0)
    for junk in ({}, {"version": 1, "service": "api", "wall": "x", "values": []},
                 {**saved, "values": [["a"]]}, {**saved, "version": 99}):
        assert not import_state(TargetDeriver("api"), junk, 1040.0, 0.0)
    # A restarted target (new start time) still counts from zero after a resumed state.
    fresh = TargetDeriver("api")
    assert import_state(fresh, saved, 1040.0, 7.0)
    restarted = exposition({route: [3] * 5}, start=2000.0)
    assert perf(fresh.derive(parse(restarted, fresh.cache), 1045.0, 12.0))["requests"] == 3


def test_4xx_answers_have_their_own_rate_beside_the_5xx_error_rate():
    d = TargetDeriver("api")
    ok, invalid, missing = ("/items/{id}", "POST", "201"), ("/items/{id}", "POST", "422"), \
        ("<unmatched>", "GET", "404")
    run(d, exposition({ok: [0] * 5, invalid: [0] * 5, missing: [0] * 5}), 0.0)
    points = run(d, exposition({ok: [165] * 5, invalid: [35] * 5, missing: [9] * 5}), 15.0)
    row = perf(points, method="POST")
    # 35 of 200 answered 422: a 17.5 % 4xx rate, and no 5xx error.
    assert row["client_error_rate_percent"] == 17.5 and row["error_rate_percent"] == 0
    assert perf(points, "<unmatched>")["client_error_rate_percent"] == 100.0
    service = perf(points, "_all", "_all")
    assert service["client_errors"] == 44 and service["client_error_rate_percent"] == \
        pytest.approx(100 * 44 / 209)


def test_requests_within_the_limit_add_up_where_percentiles_do_not():
    d = TargetDeriver("api", latency_limit_s=0.5)
    a, b = ("/a", "GET", "200"), ("/b", "GET", "200")
    run(d, exposition({a: [0] * 5, b: [0] * 5}), 0.0)
    # /a: 100 requests, 60 within 0.5 s; /b: 100 requests, all within 0.1 s.
    points = run(d, exposition({a: [0, 0, 60, 100, 100], b: [100] * 5}), 15.0)
    assert perf(points, "/a")["requests_within_limit"] == 60
    assert perf(points, "/b")["requests_within_limit"] == 100
    service = perf(points, "_all", "_all")
    assert service["requests_within_limit"] == 160 and service["requests"] == 200


@given(st.lists(st.integers(0, 1000), min_size=4, max_size=4))
def test_the_share_within_the_limit_decides_exactly_whether_p95_meets_it(increments):
    from promflux.bridge.analyze.derive import within
    from promflux.bridge.analyze.quantile import normalize, quantile

    bounds = [0.1, 0.25, 0.5, 1.0, float("inf")]
    cumulative, total = {}, 0
    for bound, added in zip(bounds, [*increments, 7], strict=True):
        total += added
        cumulative[bound] = float(total)
    p95 = quantile(0.95, normalize(cumulative.items()))
    share = within(cumulative, 0.5) / cumulative[float("inf")]
    assert (share >= 0.95) == (p95 <= 0.5)


def test_memory_in_bytes_and_in_the_megabytes_of_older_exporters_store_the_same_mib():
    for name, value in (("service_memory_rss_bytes", 50 * 2**20),
                        ("service_memory_rss_megabytes", 50),
                        ("service_memory_limit_bytes", 2**30),
                        ("service_memory_limit_megabytes", 1024)):
        points = run(TargetDeriver("api"), f'{name}{{pid="7",service="api"}} {value}\n', 1.0)
        fields = [f for m, _, f, _ in points if m in ("resources", "system")]
        assert fields in ([{"memory_mb": 50.0}], [{"memory_limit_mb": 1024.0}]), (name, fields)


def test_bucket_roles_share_one_float_per_bound_and_keep_its_value():
    """Every bucket series with a bound holds that bound's one float (24 bytes a series
    otherwise); the value is the bound's, whatever its spelling."""
    from promflux.bridge.analyze import derive, schema
    from promflux.bridge.model import intern_series

    preset = schema.PRESETS["promflux"]

    def role(route: str, le: str):
        return derive.classify(intern_series("http_request_duration_seconds_bucket", (
            ("le", le), ("method", "GET"), ("route", route), ("status", "200"))), preset)

    a, b = role("/a", "0.25"), role("/b", "0.25")
    assert a[3] == 0.25 and a[3] is b[3]
    assert role("/c", "+Inf")[3] == math.inf and role("/c", "2.5e-1")[3] == 0.25
    assert role("/d", "not a number") is None  # no bound, not stored
