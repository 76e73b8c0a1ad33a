"""Regression baselines from a real InfluxDB: the same hour over the last 7 days from the
hourly roll-ups when there is enough of it, else the hour before the window, exact sums."""

from __future__ import annotations

import asyncio
import itertools
import time

from hypothesis import given
from hypothesis import strategies as st
from promflux.bridge.analyze import baselines, bucket_fields
from promflux.bridge.analyze.alerts import Evaluator
from promflux.bridge.analyze.rules import RuleBook
from promflux.bridge.analyze.thresholds import DEFAULTS
from promflux.bridge.analyze.window import Counts
from promflux.bridge.config import Retention
from promflux.bridge.jobs.baselines import BaselineJob
from promflux.bridge.store import rollups
from promflux.bridge.store.influx import InfluxClient
from promflux.bridge.store.influxql.baselines import named
from promflux.bridge.store.lineprotocol import encode_points
from promflux.bridge.store.setup import create_schema
from promflux.bridge.store.storage import Storage


def endpoint_points(endpoint: str, at_s: float, requests: float, errors: float,
                    fast: float) -> list:
    """One interval of an endpoint: ``fast`` requests within 50 ms, the rest within 1 s."""
    tags = {"service": "api", "endpoint": endpoint, "method": "GET"}
    ms = int(at_s * 1000)
    return [("performance_metrics", tags, {"requests": requests, "errors": errors}, ms),
            ("latency_buckets", tags, {"le_0.05": fast, "le_1.0": requests - fast}, ms)]


def test_baselines_come_from_the_same_hour_of_the_week_else_the_previous_hour(influxdb):
    now = time.time()
    hour = now - now % 3600

    async def run() -> Evaluator:
        client = InfluxClient(influxdb.url, "baselines")
        try:
            await create_schema(client, Retention())
            hourly, raw = [], []
            for day in range(1, 8):  # "/week": 300 requests in this hour of each day
                hourly += endpoint_points("/week", hour - day * 86400, 300, 3, 290)
                # another hour of the same days: not the same hour, not counted
                hourly += endpoint_points("/week", hour - day * 86400 + 7200, 999, 999, 0)
            hourly += endpoint_points("/thin", hour - 86400, 40, 0, 40)  # too little
            for minute in range(0, 60, 5):  # the hour before the 5-minute window
                raw += endpoint_points("/thin", now - 300 - 3600 + minute * 60 + 1, 20, 1, 15)
                raw += endpoint_points("/new", now - 300 - 3600 + minute * 60 + 1, 10, 0, 10)
            raw += endpoint_points("/new", now - 60, 500, 500, 0)  # inside the window
            await client.write(encode_points(hourly), rollups.HOURLY)
            await client.write(encode_points(raw), rollups.RAW)
            evaluator = Evaluator(RuleBook(DEFAULTS))
            await BaselineJob(Storage(client, "baselines"), evaluator, 300.0, 100.0).refresh(now)
            return evaluator
        finally:
            await client.close()

    found = asyncio.run(run()).baselines
    week = found[("api", "GET /week")]
    assert week.source == baselines.SAME_HOUR
    assert (week.counts.requests, week.counts.errors) == (2100, 21)
    assert week.counts.buckets == {0.05: 2030, 1.0: 2100, float("inf"): 2100}
    thin = found[("api", "GET /thin")]  # 40 requests of weekly history: the previous hour
    assert thin.source == baselines.PREVIOUS_HOUR
    assert (thin.counts.requests, thin.counts.errors) == (240, 12)
    assert thin.counts.buckets == {0.05: 180, 1.0: 240, float("inf"): 240}
    new = found[("api", "GET /new")]
    assert new.source == baselines.PREVIOUS_HOUR and new.counts.requests == 120
    service = found[("api", "_all")]  # the service's own week: every endpoint in it
    assert service.source == baselines.SAME_HOUR and service.counts.requests == 2140


BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, float("inf")]


@st.composite
def endpoint_buckets(draw: st.DrawFn) -> list[int]:
    """One endpoint's own bucket counts, non-zero only in a band of bounds (a fast
    endpoint's row stops where a slow one's starts)."""
    start = draw(st.integers(0, len(BOUNDS) - 1))
    stop = draw(st.integers(start + 1, len(BOUNDS)))
    return [draw(st.integers(0, 50)) if start <= i < stop else 0 for i in range(len(BOUNDS))]


@given(st.lists(endpoint_buckets(), min_size=1, max_size=5))
def test_the_service_baseline_is_its_endpoints_buckets_summed(own_per_endpoint):
    """Each endpoint's stored row covers only its own range of bounds; the service's
    baseline must equal histogram_quantile over the exporters' buckets summed."""
    series = []
    for i, own in enumerate(own_per_endpoint):
        cumulative = dict(zip(BOUNDS, itertools.accumulate(own), strict=True))
        row = bucket_fields.fields(cumulative)
        columns = ["time", *("sum_" + name for name in row)]
        series.append({"tags": {"service": "api", "endpoint": f"/e{i}", "method": "GET"},
                       "columns": columns, "values": [[0, *row.values()]]})
    found = baselines.reduce(named([{"series": series}]), min_requests=1e9)
    summed = [sum(col) for col in zip(*own_per_endpoint, strict=True)]
    truth = Counts(sum(summed), 0.0, 0.0,
                   dict(zip(BOUNDS, itertools.accumulate(summed), strict=True)))
    if not sum(summed):
        return
    service = found["api", "_all"].counts
    for q in (0.5, 0.9, 0.95, 0.99):
        assert service.percentile_ms(q) == truth.percentile_ms(q)
