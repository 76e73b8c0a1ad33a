"""Steady pages (bridge/ingest/steady.py): a page whose lines are where they were is parsed
and derived in one compiled pass. It must give exactly what the usual parse and derive
give, page after page, whatever the pages do: grow, reset, churn, reorder labels, repeat
series, carry odd values, timestamps, bad TYPE lines, or be cut short. And it must be
taken on the pages it is made for."""

from __future__ import annotations

import contextlib
import math
import re
import struct
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from promflux.bridge.analyze.derive import TargetDeriver
from promflux.bridge.ingest import steady as steady_module
from promflux.bridge.ingest.exposition import ExpositionError, SeriesCache, parse
from promflux.bridge.ingest.steady import SteadyPages

from tests.test_bridge_native import EDITS, NOISE, _native, core, edit, plain, scrape_sequences

needs_core = pytest.mark.skipif(_native is None, reason="installed without a C compiler")


@contextlib.contextmanager
def compiled() -> Iterator[None]:
    """The compiled core in every module that picks one (PROMFLUX_PURE=1 or not)."""
    saved = steady_module.compiled
    steady_module.compiled = _native
    try:
        with core(True):
            yield
    finally:
        steady_module.compiled = saved


def usual(pages: list[str]) -> list[object]:
    """What the usual parse and derive give, page by page."""
    return steady(pages, first=False)


def steady(pages: list[str], taken: list[int] | None = None,
           first: bool = True) -> list[object]:
    """The same through the steady scan ``first``, as the scrape loop does it; ``taken``
    gets the pages the scan took."""
    deriver = TargetDeriver("api")
    pages_of = SteadyPages(deriver)
    seen: list[object] = []
    for step, page in enumerate(pages):
        got = pages_of.derive(page, False, None, 15.0 * step, 15.0 * step, "") if (
            first) else None
        if got is not None:
            seen.append(plain(got[1]))
            if taken is not None:
                taken.append(step)
            continue
        try:
            scrape = parse(page, deriver.cache)
        except ExpositionError as error:
            seen.append(str(error))
            continue
        seen.append(plain(deriver.derive_all(scrape, 15.0 * step, 15.0 * step)))
        if first:
            pages_of.arm(scrape, page)
    return [*seen, _end(deriver)]


def _end(deriver: TargetDeriver) -> str:
    state = sorted((repr(s), repr(v)) for s, v in deriver.tracker.last_values().items())
    return repr((deriver.restarts, deriver.duplicates, deriver.refused_histograms,
                 deriver.tracker.time, len(deriver.tracker), state))


def grown(page: str, by: int) -> str:
    """``page`` a scrape later: every value of a counter line grown by ``by``."""
    out = []
    for line in page.split("\n"):
        head, _, value = line.rpartition(" ")
        if line[:1] not in ("#", "") and ("_total" in head or "_bucket" in head
                                          or "_count" in head or "_sum" in head):
            try:
                line = f"{head} {float(value) + by}"
            except ValueError:
                pass
        out.append(line)
    return "\n".join(out)


@st.composite
def steady_sequences(draw: st.DrawFn) -> list[str]:
    """Sequences of our exporter's pages, mostly steady runs, with faults among them."""
    pages = draw(scrape_sequences())
    out: list[str] = []
    for page in pages:
        for step in range(draw(st.integers(1, 3))):
            out.append(grown(page, step * draw(st.integers(0, 3))))
        kind = draw(st.sampled_from([None, "type", "cut_line", *EDITS]))
        if kind == "type":  # a TYPE line gone bad
            out.append(out[-1].replace(" histogram\n", " histgram\n"))
        elif kind == "cut_line":  # cut after a line: it looks whole, the rest is missing
            lines = out[-1].split("\n")
            out.append("\n".join(lines[:draw(st.integers(0, len(lines) - 1))]) + "\n")
        elif kind is not None:
            out.append(edit(out[-1], kind, draw(st.integers(0, 10_000)), draw(NOISE)))
    return out


@needs_core
@settings(max_examples=200, deadline=None)
@given(steady_sequences())
def test_steady_pages_give_what_the_usual_parse_and_derive_give(pages):
    with compiled():
        assert steady(pages) == usual(pages)


@needs_core
def test_the_steady_scan_is_taken_on_a_page_that_only_grows_and_left_when_it_changes():
    page = ("# HELP http_request_duration_seconds Latency.\n"
            "# TYPE http_request_duration_seconds histogram\n"
            + "".join(f'http_request_duration_seconds_bucket{{method="GET",route="/a",'
                      f'status="200",le="{le}"}} {n}\n'
                      for le, n in (("0.1", 1), ("0.5", 3), ("+Inf", 4)))
            + 'http_request_duration_seconds_count{method="GET",route="/a",status="200"} 4\n'
            + 'http_request_duration_seconds_sum{method="GET",route="/a",status="200"} 0.9\n'
            + "process_start_time_seconds 1000\n")
    pages = [grown(page, n) for n in range(4)]
    pages.append(pages[-1].replace("process_start_time_seconds 1000",
                                   "process_start_time_seconds 2000"))  # a restart
    pages += [grown(pages[-1], n) for n in range(1, 4)]
    pages.append(re.sub(r"(_sum\{.*\}) \S+", r"\1 0.5", pages[-1]))  # a sum went down
    pages.append(pages[-1] + 'events_processed_total{kind="x"} 1\n')  # a new series
    pages.append(pages[-1].replace("# TYPE http_request_duration_seconds histogram",
                                   "# TYPE http_request_duration_seconds"))  # malformed
    taken: list[int] = []
    with compiled():
        assert steady(pages, taken) == usual(pages)
    # The first page (all its series new) is not laid out, the second is: steady from the
    # third on, until the restart; again two pages after it (the first waits one scrape
    # after the miss, the second is laid out); never on a change.
    assert taken == [2, 3, 6, 7]
    assert isinstance(usual(pages)[-2], str) and "malformed TYPE line" in usual(pages)[-2]


@needs_core
def test_buckets_of_endpoints_interleaved_on_the_page_go_to_their_own_endpoints():
    """Bucket lines of two endpoints taking turns (and one bound out of order), each
    growing by its own step: each sum goes to its endpoint and bound, the buckets in the
    order the page gives them."""
    bounds = (("0.5", 3), ("0.1", 1), ("1", 6), ("+Inf", 8))  # (bound, step: cumulative)

    def page(n: int) -> str:
        lines = ["# TYPE http_request_duration_seconds histogram\n"]
        for le, step in bounds:
            for route, scale in (("/a", 1), ("/b", 10)):
                lines.append(f'http_request_duration_seconds_bucket{{method="GET",'
                             f'route="{route}",status="200",le="{le}"}} {n * step * scale}\n')
        for route, scale in (("/a", 1), ("/b", 10)):
            for kind, value in (("count", n * 8 * scale), ("sum", n * 0.5 * scale)):
                lines.append(f'http_request_duration_seconds_{kind}{{method="GET",'
                             f'route="{route}",status="200"}} {value}\n')
        return "".join(lines)

    pages = [page(n * n) for n in range(6)]
    taken: list[int] = []
    with compiled():
        assert steady(pages, taken) == usual(pages)
    assert taken == [2, 3, 4, 5]


@needs_core
@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers(-10**20, 10**20).map(str),
    st.tuples(st.integers(0, 10**17), st.integers(0, 25)).map(lambda t: f"{t[0]:0{t[1]}d}"),
    st.tuples(st.sampled_from(["", "-", "+"]), st.text("0123456789", max_size=18),
              st.sampled_from(["", "."]), st.text("0123456789", max_size=24)).map("".join),
))
def test_plain_values_read_as_float_reads_them(token):
    """Decimal values are read without strtod where that is exact: the very double
    float() gives (the sign of zero too), or the same refusal."""
    cache = SeriesCache()
    with compiled():
        parse("m 0\n", cache)  # (so that the line below is a known one, read in C)
        try:
            value = parse(f"m {token}\n", cache).samples[0][1]
        except ExpositionError:
            value = None
    try:
        expected = float(token)
    except ValueError:
        expected = None
    if expected is None or value is None:
        assert value == expected
    else:
        assert struct.pack("<d", value) == struct.pack("<d", expected) or (
            math.isnan(value) and math.isnan(expected))
