"""The parser against the table in docs/exposition.md (each row checked against the bridge
and against the reference: Debian's promtool for the text format, prometheus_client for
OpenMetrics), and a fuzz test over mutated real pages."""

from __future__ import annotations

import ast
import math
import random
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import generate_latest as text_latest
from prometheus_client.openmetrics.exposition import generate_latest as om_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse
from prometheus_client.parser import text_string_to_metric_families as text_parse
from promflux.bridge.ingest.exposition import ExpositionError, SeriesCache, parse

from .apps.misbehaving import _State, page
from .conftest import ROOT


def _rows() -> list[tuple[str, str, bool, bool]]:
    rows = []
    for line in (ROOT / "docs" / "exposition.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0] in ("text", "openmetrics"):
            text = ast.literal_eval(cells[1].strip("`"))
            rows.append((cells[0], text, cells[2] == "accept", cells[3] == "accept"))
    return rows


ROWS = _rows()


def _promtool_accepts(text: str) -> bool:
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: `make test` installs Debian's prometheus"
    done = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                          capture_output=True, timeout=30)
    # 0: clean; 3: parsed, with lint remarks (help text, suffixes); 1: did not parse.
    return done.returncode in (0, 3)


def _reference(fmt: str, text: str) -> bool:
    if fmt == "text":
        return _promtool_accepts(text)
    try:
        list(om_parse(text))
    except ValueError:
        return False
    return True


def _ours(fmt: str, text: str) -> bool:
    try:
        parse(text, openmetrics=fmt == "openmetrics")
    except ExpositionError:
        return False
    return True


def test_the_table_has_every_kind_of_row():
    assert len(ROWS) >= 35
    assert {(ref, ours) for _, _, ref, ours in ROWS} == {(True, True), (False, False),
                                                         (False, True)}


@pytest.mark.parametrize("fmt, text, reference, ours", ROWS, ids=[repr(r[1])[:40] for r in ROWS])
def test_each_row_of_the_table_holds(fmt, text, reference, ours):
    assert _reference(fmt, text) == reference
    assert _ours(fmt, text) == ours


@pytest.mark.parametrize("fmt, text", [(f, t) for f, t, ref, ours in ROWS if ref and ours])
def test_where_both_accept_the_samples_are_the_same(fmt, text):
    families = text_parse(text) if fmt == "text" else om_parse(text)
    theirs = sorted((s.name, tuple(sorted(s.labels.items())), s.value)
                    for f in families for s in f.samples)
    seen: set[tuple[str, tuple]] = set()
    ours = []
    for series, value in parse(text, openmetrics=fmt == "openmetrics").samples:
        ours.append((series.name, series.labels, value))
        seen.add((series.name, series.labels))
    assert len(ours) == len(theirs)
    for (n1, l1, v1), (n2, l2, v2) in zip(sorted(ours), theirs, strict=True):
        assert (n1, l1) == (n2, l2)
        assert v1 == v2 or (math.isnan(v1) and math.isnan(v2))


def _pages() -> list[tuple[str, bool]]:
    registry = CollectorRegistry()
    Counter("requests", "r", ["path"], registry=registry).labels('/a "b"\\').inc(3)
    Gauge("temp", "t", registry=registry).set(-1.5)
    hist = Histogram("latency_seconds", "l", ["route"], registry=registry)
    hist.labels("/x").observe(0.2)
    state = _State()
    state.count = 12345
    return [(text_latest(registry).decode(), False), (om_latest(registry).decode(), True),
            (page(state), False)]


_PIECES = ["{", "}", '"', "=", ",", "#", " ", "\t", "\n", "\\", "# EOF\n", "le=", "+Inf",
           "NaN", "_", "\u0661", "\x00", "é", "1e308", "-", ".", "0x", " # {a=\"b\"} 1"]


def _mutate(rng: random.Random, text: str) -> str:
    for _ in range(rng.randrange(1, 4)):
        at = rng.randrange(len(text) + 1)
        op = rng.randrange(4)
        if op == 0:  # cut a piece out
            text = text[:at] + text[at + rng.randrange(1, 40):]
        elif op == 1:  # insert a significant piece
            text = text[:at] + rng.choice(_PIECES) + text[at:]
        elif op == 2:  # repeat a piece
            text = text[:at] + text[at:at + rng.randrange(1, 200)] * 2 + text[at + 1:]
        else:  # cut the answer short
            text = text[:at]
    return text


def test_mutated_real_pages_give_samples_or_a_parse_error_never_a_crash():
    rng = random.Random(20)
    pages = _pages()
    cache = SeriesCache()  # one cache across inputs, as a target's is across scrapes
    outcomes = {"parsed": 0, "refused": 0}
    for _ in range(4000):
        text, om = rng.choice(pages)
        mutated = _mutate(rng, text)
        try:
            parse(mutated, cache, openmetrics=om, max_samples=10_000)
            outcomes["parsed"] += 1
        except ExpositionError:
            outcomes["refused"] += 1
    assert outcomes["parsed"] > 100 and outcomes["refused"] > 100, outcomes


@settings(max_examples=500)
@given(st.text(alphabet=st.sampled_from(list('ab_:{}="\\,# \t\n.+-eE019é\u0661\r')),
               max_size=80), st.booleans())
def test_any_text_gives_samples_or_a_parse_error(text, openmetrics):
    try:
        scrape = parse(text, openmetrics=openmetrics)
    except ExpositionError:
        return
    for series, value in scrape.samples:  # what is accepted is well formed
        assert series.name and isinstance(value, float)
