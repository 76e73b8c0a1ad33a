"""The request family rendered from its counts says exactly what prometheus_client would:
the same samples through prometheus_client's own parsers, text and OpenMetrics."""

from __future__ import annotations

import random

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text
from promflux.exporter.exposition import render
from promflux.exporter.metrics import LATENCY_BUCKETS
from promflux.exporter.recorder import Recorder

pytestmark = pytest.mark.compat
NAME = "http_request_duration_seconds"
ROUTES = ["/items/{item_id}", '/odd/"quoted"', "/back\\slash", "/new\nline", "/ünï"]


def samples(families) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
    return {(s.name, tuple(sorted(s.labels.items())), s.value)
            for f in families if f.name == NAME for s in f.samples
            if not s.name.endswith("_created")}


def filled() -> tuple[Recorder, CollectorRegistry]:
    """The same requests into a promflux recorder and into a plain prometheus_client
    histogram."""
    rng = random.Random(5)
    recorder = Recorder("api", registry=CollectorRegistry())
    plain_registry = CollectorRegistry()
    plain = Histogram(NAME, "doc", ["service", "route", "method", "status"],
                      buckets=LATENCY_BUCKETS, registry=plain_registry)
    for _ in range(2000):
        key = (rng.choice(ROUTES), rng.choice(["GET", "POST"]), rng.choice(["200", "500"]))
        seconds = rng.choice([0.0004, 0.001, 0.0031, 0.5, 0.75, 2.0, 12.0, rng.random()])
        recorder.requests.observe(key, seconds)
        plain.labels("api", *key).observe(seconds)
    recorder.requests.touch(("/never", "GET", "200"))  # a route without traffic yet
    plain.labels("api", "/never", "GET", "200")
    recorder.flush()
    return recorder, plain_registry


def test_text_format_matches_prometheus_client():
    recorder, plain = filled()
    body, headers = recorder.render("text/plain", None)
    ours = samples(parse_text(body.decode()))
    theirs = samples(parse_text(generate_latest(plain).decode()))
    assert ours == theirs and len(ours) == 21 * (len(LATENCY_BUCKETS) + 3)  # 21 series
    assert body.decode().count(f"# TYPE {NAME} histogram") == 1
    assert f"{NAME}_created" not in body.decode()


def test_openmetrics_matches_and_ends_with_eof():
    recorder, plain = filled()
    body, headers = recorder.render("application/openmetrics-text; version=1.0.0", None)
    text = body.decode()
    assert dict(headers)["Content-Type"].startswith("application/openmetrics-text")
    assert text.endswith("# EOF\n") and text.count("# EOF") == 1
    theirs = samples(parse_text(generate_latest(plain).decode()))
    assert samples(parse_om(text)) == theirs


def test_any_other_reader_of_the_registry_still_gets_the_family():
    recorder, plain = filled()
    direct = generate_latest(recorder.exposition_registry).decode()
    assert samples(parse_text(direct)) == samples(parse_text(generate_latest(plain).decode()))


def test_gzip_and_a_registry_shared_with_the_application():
    recorder, _ = filled()
    body, headers = render(recorder.exposition_registry, None, "gzip",
                           recorder.metrics.request_duration.render())  # type: ignore[union-attr]
    assert dict(headers)["Content-Encoding"] == "gzip"
    import gzip
    assert samples(parse_text(gzip.decompress(body).decode()))
