"""Panels at bins the scrape interval does not divide, on a real InfluxDB.

Percentiles (grafana/percentile_sql.py) over bucket rows as the bridge writes them, against
Prometheus's histogram_quantile of each bin's summed buckets: exact to a millionth of the
bucket's width, in every bin, for every grouping, with fields some shards have never seen.
Rates (grafana/build.py ``rate``) at 20 s bins over 15 s scrapes, the range cut inside a
bin at both ends: the true rate in every bin."""

from __future__ import annotations

import json
import math
import random
import sys

import httpx
import pytest
from promflux.bridge.analyze import bucket_fields
from promflux.bridge.analyze.quantile import normalize, quantile
from promflux.bridge.analyze.schema import JOB_PANEL_BOUNDS, OTHER_EXPORTER_BOUNDS, PANEL_BOUNDS
from promflux.bridge.jobs.layout import DAY_MS, layout_points
from promflux.bridge.store.lineprotocol import encode_points
from promflux.exporter.metrics import JOB_BUCKETS, LATENCY_BUCKETS

from .conftest import ROOT

sys.path.insert(0, str(ROOT / "grafana"))
from percentile_sql import percentiles_query  # noqa: E402

QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}


def test_the_panels_interpolate_over_the_exporters_own_layouts():
    assert tuple(LATENCY_BUCKETS) == PANEL_BOUNDS
    assert tuple(JOB_BUCKETS) == JOB_PANEL_BOUNDS


def test_the_layout_points_declare_every_panel_field_in_todays_and_tomorrows_shard():
    points = layout_points(1_800_000_000.5)
    today = 1_800_000_000_000 // DAY_MS * DAY_MS
    declared = {(p[0], p[3]): p[2] for p in points}
    latency = {bucket_fields.field_name(b)
               for b in (*PANEL_BOUNDS, *OTHER_EXPORTER_BOUNDS, math.inf)}
    jobs = {bucket_fields.field_name(b) for b in (*JOB_PANEL_BOUNDS, math.inf)}
    assert {k: set(v) for k, v in declared.items()} == {
        ("latency_buckets", today): latency, ("latency_buckets", today + DAY_MS): latency,
        ("job_buckets", today): jobs, ("job_buckets", today + DAY_MS): jobs}
    assert all(dict(p[1]) == {} and set(p[2].values()) == {0.0} for p in points)


def rows(rng: random.Random, start_ms: int, seconds: int) -> tuple[list[str], dict]:
    """Bucket rows of two endpoints every 5 s, as the bridge writes them (each bucket's own
    requests, from the empty bound below the first to the last non-empty one; some
    requests over the highest bound), and the truth: own counts per (endpoint, second)."""
    lines, truth = [], {}
    bounds = list(LATENCY_BUCKETS) + [math.inf]
    for at in range(0, seconds, 5):
        for endpoint in ("/a", "/b"):
            own = {b: 0 for b in bounds}
            for _ in range(rng.randint(0, 30)):
                own[bounds[min(len(bounds) - 1, int(rng.expovariate(0.25)))]] += 1
            cumulative, total = {}, 0
            for b in bounds:
                total += own[b]
                cumulative[b] = total
            fields = bucket_fields.fields(cumulative)
            if not fields:
                continue
            lines.append(f"latency_buckets,endpoint={endpoint} " + ",".join(
                f"{k}={v}" for k, v in fields.items()) + f" {start_ms + at * 1000}")
            truth[(endpoint, at)] = own
    return lines, truth


@pytest.mark.parametrize("width", [1, 2, 5, 15, 20, 60, 300, 3600])
def test_each_bins_percentiles_are_its_requests_percentiles(influxdb, width):
    rng = random.Random(width)
    database = f"percentiles_{width}"
    httpx.post(influxdb.url + "/query", params={"q": f'CREATE DATABASE "{database}"'})
    start_ms = 1_700_000_000_000 // DAY_MS * DAY_MS  # (a fresh shard: only these rows)
    lines, truth = rows(rng, start_ms, 900)
    layout = encode_points(layout_points(start_ms / 1000)).decode().splitlines()
    for body in (lines, layout):
        answer = httpx.post(influxdb.url + "/write", params={"db": database, "precision": "ms"},
                            content="\n".join(body).encode())
        assert answer.status_code == 204, answer.text
    where = f"time >= {start_ms}ms AND time < {start_ms + 900_000}ms"
    for group in ('"endpoint"', ""):
        query = percentiles_query(PANEL_BOUNDS, '"latency_buckets"', where, group, QUANTILES,
                                  OTHER_EXPORTER_BOUNDS)
        query = query.replace("$__interval", f"{width}s")
        answer = influxdb.query(query, db=database)
        shown = {(s.get("tags", {}).get("endpoint", ""), row[0]): dict(
            zip(s["columns"], row, strict=True)) for s in answer for row in s["values"]}
        expected = {}
        for (endpoint, at), own in truth.items():
            key = (endpoint if group else "", start_ms + at * 1000 - (at % width) * 1000)
            summed = expected.setdefault(key, {})
            for b, n in own.items():
                summed[b] = summed.get(b, 0) + n
        expected = {k: v for k, v in expected.items() if sum(v.values())}
        assert set(shown) == set(expected)  # a row for each bin with requests, only those
        for key, own in expected.items():
            cumulative, total = [], 0
            for b in sorted(own):
                total += own[b]
                cumulative.append((b, total))
            for column, q in QUANTILES.items():
                want = quantile(q, normalize(cumulative))
                assert want is not None
                bounds = [b for b in sorted(own) if b < want] or [0.0]
                width_ms = (next(b for b in sorted(own) if b >= want) - bounds[-1]) * 1000
                got = shown[key][column]
                assert abs(got - want * 1000) <= 1e-6 * max(width_ms, 1.0), (key, column)


def test_another_exporters_bucket_counts_in_the_next_panel_bucket_up(influxdb):
    """starlette-exporter's 7.5 s bucket is read as part of promflux's (5 s, 10 s]; an
    instrumentator's 30 s one as part of +Inf (the highest panel bound, as Prometheus says
    of a rank in +Inf)."""
    database = "percentiles_other"
    httpx.post(influxdb.url + "/query", params={"q": f'CREATE DATABASE "{database}"'})
    start_ms = 1_700_000_000_000 // DAY_MS * DAY_MS
    body = [f"latency_buckets,endpoint=/s le_5.0=0,le_7.5=10 {start_ms}",
            f"latency_buckets,endpoint=/i le_10.0=0,le_30.0=10 {start_ms}",
            *encode_points(layout_points(start_ms / 1000)).decode().splitlines()]
    assert httpx.post(influxdb.url + "/write", params={"db": database, "precision": "ms"},
                      content="\n".join(body).encode()).status_code == 204
    query = percentiles_query(PANEL_BOUNDS, '"latency_buckets"',
                              f"time >= {start_ms}ms AND time < {start_ms + 60_000}ms",
                              '"endpoint"', {"p50": 0.5}, OTHER_EXPORTER_BOUNDS)
    answer = influxdb.query(query.replace("$__interval", "60s"), db=database)
    shown = {s["tags"]["endpoint"]: s["values"][0][1] for s in answer}
    assert shown == pytest.approx({"/s": 7500.0, "/i": 10000.0}, abs=1e-3)


def test_a_steady_rate_is_the_same_in_every_bin_whatever_the_bin(influxdb):
    """Two instances, 60 requests every 15 s each (480 a minute together), drawn by the
    dashboard's own query at 20 s bins (one or two scrapes each), at 7.5 s and at 1 s bins
    (zero or one), the range starting and ending inside a bin: every bin says 480. A
    query dividing by the bin's length would say 360 or 720, 0 or 960, 0 or 7,200."""
    database = "rates_15s"
    httpx.post(influxdb.url + "/query", params={"q": f'CREATE DATABASE "{database}"'})
    start_ms = 1_700_000_000_000 // DAY_MS * DAY_MS
    lines = [f"performance_metrics,service=api,instance={instance},endpoint=_all,method=_all "
             f"requests=60,interval_s=15 {start_ms + at * 1000 + offset}"
             for at in range(0, 600, 15) for instance, offset in (("a:1", 0), ("b:1", 40))]
    assert httpx.post(influxdb.url + "/write", params={"db": database, "precision": "ms"},
                      content="\n".join(lines).encode()).status_code == 204
    board = json.loads((ROOT / "grafana/dashboards/promflux-overview.json").read_text())
    query = next(t["query"] for p in board["panels"] if p["title"] == "Requests per minute "
                 "by service" for t in p["targets"])
    for width_ms in (20_000, 7_500, 1_000):
        time_filter = f"time >= {start_ms + 5_000}ms and time <= {start_ms + 583_000}ms"
        answer = influxdb.query(query.replace("$timeFilter", time_filter).replace(
            "$__interval", f"{width_ms}ms"), db=database)
        values = [row[1] for s in answer for row in s["values"] if row[1] is not None]
        # A bin holding no scrape has no point (the line spans it), the others all of them.
        assert len(values) >= 578_000 // max(width_ms, 15_000) - 1
        assert values == pytest.approx([480.0] * len(values)), width_ms
