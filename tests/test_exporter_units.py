"""The exporter's pure parts: accumulation, /metrics negotiation and auth, route walking."""

from __future__ import annotations

import base64
import gzip

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from promflux.exporter.accumulator import FOLD_AT, HistogramAccumulator
from promflux.exporter.exposition import MetricsAuth, accepts_gzip, render
from promflux.exporter.metrics import LATENCY_BUCKETS

pytestmark = pytest.mark.compat


def _pair() -> tuple[HistogramAccumulator, CollectorRegistry, CollectorRegistry]:
    fast_registry, reference_registry = CollectorRegistry(), CollectorRegistry()
    fast = Histogram("h_seconds", "d", ["service", "route"], buckets=LATENCY_BUCKETS,
                     registry=fast_registry)
    Histogram("h_seconds", "d", ["service", "route"], buckets=LATENCY_BUCKETS,
              registry=reference_registry)
    return HistogramAccumulator(fast, LATENCY_BUCKETS, ("svc",)), fast_registry, \
        reference_registry


def _without_created(registry: CollectorRegistry) -> list[str]:
    return [line for line in generate_latest(registry).decode().splitlines()
            if "_created" not in line]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["/a", "/b/{id}"]),
                          st.one_of(st.sampled_from(LATENCY_BUCKETS),
                                    st.floats(0, 20, allow_nan=False))),
                max_size=60),
       st.integers(0, 3))
def test_accumulator_matches_prometheus_client_observe(observations, flush_every):
    accumulator, fast_registry, reference_registry = _pair()
    reference = reference_registry._names_to_collectors["h_seconds"]
    for i, (route, value) in enumerate(observations):
        accumulator.observe((route,), value)
        reference.labels("svc", route).observe(value)
        if flush_every and i % flush_every == 0:
            accumulator.flush()
    accumulator.flush()
    accumulator.flush()  # a second flush adds nothing
    fast_lines = _without_created(fast_registry)
    reference_lines = _without_created(reference_registry)
    # Sums are added in a different order: compare them to a tolerance, the rest exactly.
    for fast_line, reference_line in zip(fast_lines, reference_lines, strict=True):
        if "_sum{" in fast_line:
            assert float(fast_line.split()[-1]) == pytest.approx(
                float(reference_line.split()[-1]), rel=1e-9, abs=1e-12)
        else:
            assert fast_line == reference_line
    assert accumulator.completed == len(observations)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(LATENCY_BUCKETS), st.floats(0, 20, allow_nan=False)),
                min_size=FOLD_AT - 3, max_size=3 * FOLD_AT + 5),
       st.integers(0, 2 * FOLD_AT))
def test_batched_values_land_where_observe_puts_them(values, flush_at):
    """The hot paths append to a series' pending list (folded every FOLD_AT values and on
    flush): the page equals prometheus_client's observe() of the same values."""
    accumulator, fast_registry, reference_registry = _pair()
    reference = reference_registry._names_to_collectors["h_seconds"]
    pending = accumulator.series(("/a",))
    for i, value in enumerate(values):
        accumulator.add(pending, value)
        reference.labels("svc", "/a").observe(value)
        assert len(pending) < FOLD_AT
        if i == flush_at:
            accumulator.flush()
    accumulator.flush()
    for fast_line, reference_line in zip(_without_created(fast_registry),
                                         _without_created(reference_registry), strict=True):
        if "_sum{" in fast_line:  # (a flush adds its batch's sum: another rounding order)
            assert float(fast_line.split()[-1]) == pytest.approx(
                float(reference_line.split()[-1]), rel=1e-9)
        else:
            assert fast_line == reference_line
    assert accumulator.completed == len(values)


def test_a_nan_duration_is_not_counted():
    accumulator, registry, _ = _pair()
    accumulator.observe(("/a",), float("nan"))
    accumulator.observe(("/a",), 0.2)
    accumulator.flush()
    text = generate_latest(registry).decode()
    assert 'h_seconds_count{route="/a",service="svc"} 1.0' in text
    assert 'h_seconds_sum{route="/a",service="svc"} 0.2' in text


def test_bucket_edges_are_inclusive():
    accumulator, registry, _ = _pair()
    accumulator.observe(("/a",), 0.5)
    accumulator.observe(("/a",), 0.5000001)
    accumulator.flush()
    text = generate_latest(registry).decode()
    assert 'h_seconds_bucket{le="0.5",route="/a",service="svc"} 1.0' in text
    assert 'h_seconds_bucket{le="0.6",route="/a",service="svc"} 2.0' in text


def test_touch_creates_zero_series():
    accumulator, registry, _ = _pair()
    accumulator.touch(("/never",))
    assert 'h_seconds_count{route="/never",service="svc"} 0.0' in generate_latest(
        registry).decode()


def test_auth_bearer_and_basic():
    bearer = MetricsAuth(bearer_token="tok")
    assert bearer.allows("Bearer tok") and bearer.allows("bearer tok")
    assert not bearer.allows("Bearer nope") and not bearer.allows(None)
    assert not bearer.allows("Basic " + base64.b64encode(b"u:tok").decode())
    basic = MetricsAuth(username="u", password="p:w")
    good = "Basic " + base64.b64encode(b"u:p:w").decode()
    assert basic.allows(good)
    assert not basic.allows("Basic " + base64.b64encode(b"u:p").decode())
    assert not basic.allows("Basic !!!not-base64")
    assert not basic.allows("Basic " + base64.b64encode(b"\xff\xfe").decode())
    assert basic.challenge().startswith("Basic")
    with pytest.raises(ValueError):
        MetricsAuth(username="only")


@pytest.mark.parametrize("header, expected", [
    (None, False), ("", False), ("gzip", True), ("br, gzip;q=0.5", True),
    ("gzip;q=0", False), ("identity", False), ("*", True), ("GZIP", True),
    ("*;q=0, gzip", True), ("gzip;q=0, *", False), ("*;q=0", False), ("br, *;q=0.1", True),
    ("gzip; q=0.000", False), ("gzip;q=0.001", True), ("gzip;q=oops", False),
    ("x-gzip", True),
])
def test_accepts_gzip(header, expected):
    assert accepts_gzip(header) is expected


def test_render_negotiates_format_and_encoding():
    registry = CollectorRegistry()
    Histogram("x_seconds", "d", registry=registry).observe(0.1)
    body, headers = render(registry, "text/html", None)
    assert dict(headers)["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert b"x_seconds_count 1.0" in body
    body, headers = render(registry, "application/openmetrics-text; version=1.0.0", "gzip")
    assert dict(headers)["Content-Type"].startswith("application/openmetrics-text")
    assert dict(headers)["Content-Encoding"] == "gzip"
    assert gzip.decompress(body).endswith(b"# EOF\n")
    assert dict(headers)["Content-Length"] == str(len(body))


@pytest.mark.parametrize("bad", [[], [0.5, 0.1], [0.1, 0.1], [-1.0], [float("inf")],
                                 [float("nan")]])
def test_bucket_layouts_that_cannot_work_are_refused(bad):
    from promflux.exporter.metrics import check_buckets

    with pytest.raises(ValueError, match="buckets"):
        check_buckets(bad)


def test_the_default_buckets_resolve_fast_routes_and_keep_the_limit_as_a_bound():
    from promflux.bridge.analyze.quantile import normalize, quantile

    assert 0.5 in LATENCY_BUCKETS and LATENCY_BUCKETS[0] <= 0.001
    # 1,000 requests of 0.4 ms: the p50 read from the buckets is 0.5 ms (it was 2.5 ms
    # when the first bound was 5 ms), and any p within one bucket: at most 1 ms off.
    cumulative = [(b, 1000.0) for b in LATENCY_BUCKETS] + [(float("inf"), 1000.0)]
    assert quantile(0.5, normalize(cumulative)) == pytest.approx(0.0005)
    steps = [b - a for a, b in zip((0.0, *LATENCY_BUCKETS), LATENCY_BUCKETS, strict=False)]
    widths = dict(zip(LATENCY_BUCKETS, steps, strict=True))
    assert max(w for b, w in widths.items() if b <= 0.01) <= 0.0025 + 1e-12
    assert max(w for b, w in widths.items() if 0.1 < b <= 0.6) <= 0.1
