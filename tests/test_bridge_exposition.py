"""The bridge's exposition parser against prometheus_client's own parsers."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary
from prometheus_client import generate_latest as text_latest
from prometheus_client.openmetrics.exposition import generate_latest as om_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse
from prometheus_client.parser import text_string_to_metric_families as text_parse
from promflux.bridge.ingest.exposition import ExpositionError, SeriesCache, parse

label_values = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
label_names = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True).filter(
    lambda s: s not in {"le", "quantile"})


@st.composite
def registries(draw: st.DrawFn) -> CollectorRegistry:
    registry = CollectorRegistry()
    for i in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from([Counter, Gauge, Histogram, Summary]))
        names = draw(st.lists(label_names, max_size=3, unique=True))
        metric = kind(f"m{i}_seconds", "doc", names, registry=registry)
        for _ in range(draw(st.integers(0, 3))):
            child = metric.labels(*[draw(label_values) for _ in names]) if names else metric
            value = draw(st.floats(0, 1e6, allow_nan=False))
            if kind is Counter:
                child.inc(value)
            elif kind is Gauge:
                child.set(draw(st.floats(allow_nan=False)))
            else:
                child.observe(value)
    return registry


def _reference(families: object) -> list[tuple[str, tuple, float]]:
    return sorted(
        ((s.name, tuple(sorted(s.labels.items())), s.value) for f in families for s in f.samples),
        key=repr)


def _ours(text: str, openmetrics: bool = False) -> list[tuple[str, tuple, float]]:
    return sorted(((s.name, s.labels, v) for s, v in parse(text, openmetrics=openmetrics).samples),
                  key=repr)


def _same(a: list, b: list) -> None:
    assert len(a) == len(b)
    for (n1, l1, v1), (n2, l2, v2) in zip(a, b, strict=True):
        assert (n1, l1) == (n2, l2)
        assert v1 == v2 or (math.isnan(v1) and math.isnan(v2))


@settings(max_examples=150, deadline=None)
@given(registries())
def test_text_format_matches_prometheus_client(registry):
    text = text_latest(registry).decode()
    _same(_ours(text), _reference(text_parse(text)))


@settings(max_examples=150, deadline=None)
@given(registries())
def test_openmetrics_matches_prometheus_client(registry):
    text = om_latest(registry).decode()
    _same(_ours(text, openmetrics=True), _reference(om_parse(text)))


def test_exemplars_timestamps_and_special_values():
    text = ('# TYPE a histogram\n'
            'a_bucket{le="0.5",path="/x # y"} 3 # {trace_id="ab}c"} 0.4 1700000000.1\n'
            'a_bucket{le="+Inf",path="/x # y"} 4\n'
            '# EOF\n'
            'ignored 1\n')
    samples = parse(text, openmetrics=True).samples
    assert [(s.name, s.labels, v) for s, v in samples] == [
        ("a_bucket", (("le", "0.5"), ("path", "/x # y")), 3.0),
        ("a_bucket", (("le", "+Inf"), ("path", "/x # y")), 4.0)]
    samples = parse('x{a="1"} NaN 1700000000000\ny +Inf\nz -Inf\n').samples
    assert math.isnan(samples[0][1]) and samples[1][1] == math.inf
    assert samples[2][1] == -math.inf


def test_escapes_and_braces_inside_values():
    text = 'm{a="q\\"uote",b="back\\\\slash",c="new\\nline",d="{}",e="x,y=z"} 1\n'
    (series, value), = parse(text).samples
    assert dict(series.labels) == {"a": 'q"uote', "b": "back\\slash", "c": "new\nline",
                                   "d": "{}", "e": "x,y=z"}
    assert value == 1.0


@pytest.mark.parametrize("line, reason", [
    ('m{a="1" 1', "unterminated"),
    ("m{a=1} 1", "not quoted"),
    ('m{a="1} 1', "not terminated"),
    ('m{1a="x"} 1', "invalid label name"),
    ('m{a="x",a="y"} 1', "duplicate label"),
    ("9m 1", "invalid metric name"),
    ("m one", "invalid value"),
    ("m", "expected a value"),
    ("m 1 2 3", "expected a value"),
    ("# TYPE m flux", "malformed TYPE"),
])
def test_malformed_lines_are_rejected_with_the_line_number(line, reason):
    with pytest.raises(ExpositionError) as error:
        parse("ok 1\n" + line + "\n")
    assert "line 2" in str(error.value) and reason in str(error.value)


def test_sample_limit_and_cache_holds_one_scrape():
    cache = SeriesCache()
    parse("a 1\nb 2\n", cache)
    assert len(cache) == 2
    parse("b 3\nc 4\n", cache)
    assert set(cache.texts()) >= {"b", "c"}  # bounded: rebuilt once it outgrows a scrape
    with pytest.raises(ExpositionError, match="more than 2 samples"):
        parse("a 1\nb 2\nc 3\n", max_samples=2)


def test_cache_forgets_series_that_are_gone():
    cache = SeriesCache()
    parse("".join(f'old{{i="{i}"}} 1\n' for i in range(3000)), cache)
    assert len(cache) == 3000
    parse('new{i="1"} 1\n', cache)
    assert list(cache.texts()) == ['new{i="1"}']


def test_a_flood_of_new_series_stops_at_the_limit_and_leaves_the_cache_small():
    import time

    cache = SeriesCache()
    parse("up 1\n", cache)
    for scrape in range(3):  # 450,000 new series per body, far over a 20,000 limit
        text = "".join(f'churn{{i="{scrape}-{i}"}} 1\n' for i in range(450_000))
        start = time.process_time()
        with pytest.raises(ExpositionError, match="more than 20000 samples"):
            parse(text, cache, max_samples=20_000)
        # It stopped near the limit instead of parsing every line.
        assert time.process_time() - start < 5
        assert len(cache) <= 2 * (20_000 + 16_384) + 1024  # about one chunk past the limit
