"""Threshold windows hold their closed entries packed: every figure a window gives must be
what it gives with the entries kept as they came, scrape after scrape, as entries close,
merge and leave the window."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from promflux.bridge.analyze import window
from promflux.bridge.analyze.window import Counts, Increments, ServiceWindow

BOUNDS = [0.05, 0.1, 0.5, 1.0, math.inf]


@st.composite
def scrapes(draw: st.DrawFn) -> list[tuple[float, Increments]]:
    out, now = [], 0.0
    for _ in range(draw(st.integers(1, 60))):
        now += draw(st.sampled_from([0.25, 1.0, 2.0, 5.0, 15.0, 40.0]))  # (0.25: merged)
        endpoints = {}
        # Whole counts from one to four bytes, beyond them, and fractional ones: each
        # closed entry is packed in the narrowest array that holds all of its figures.
        scale = draw(st.sampled_from([1.0, 40.0, 1_000.0, 1e6, 1e9, 0.5, 0.1]))
        for key in draw(st.lists(st.sampled_from(["GET /a", "GET /b", "POST /c"]),
                                 unique=True, max_size=3)):
            steps = draw(st.lists(st.integers(0, 9), min_size=len(BOUNDS),
                                  max_size=len(BOUNDS)))
            cumulative = [sum(steps[:i + 1]) * scale for i in range(len(BOUNDS))]
            endpoints[key] = Counts(cumulative[-1], draw(st.integers(0, 3)) * scale, 0.0,
                                    dict(zip(BOUNDS, cumulative, strict=True)))
        target = draw(st.sampled_from(["t1", "t2"]))
        out.append((now, Increments(target, 15.0, endpoints,
                                    cpu_percent=draw(st.none() | st.floats(0, 100)))))
    return out


def figures(run: window.Running) -> object:
    def counts(c: Counts) -> object:
        return (c.requests, c.errors, c.client_errors, sorted(c.buckets.items()))

    return ({k: counts(c) for k, c in run.endpoints.items()}, counts(run.total),
            dict(run.seconds), dict(run.requests), dict(run.cpu),
            [(q, run.total.percentile_ms(q)) for q in (0.5, 0.95)])


@settings(max_examples=200, deadline=None)
@given(scrapes())
def test_packed_entries_give_every_figure_the_unpacked_ones_give(sequence):
    def replay(packing: bool) -> list:
        saved = window.pack
        if not packing:
            window.pack = lambda inc: None
        try:
            service = ServiceWindow([30.0, 120.0])
            seen = []
            for now, inc in sequence:
                service.add(Increments(inc.target, inc.seconds, {
                    k: Counts(c.requests, c.errors, c.client_errors, dict(c.buckets))
                    for k, c in inc.endpoints.items()}, inc.cpu_percent), now)
                seen.append([figures(service.run(length)) for length in (30.0, 120.0)])
            return seen
        finally:
            window.pack = saved

    assert replay(True) == replay(False)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True) | st.integers(0, 2**33).map(float)
                | st.integers(0, 300).map(float), max_size=40))
def test_the_narrowest_array_gives_every_figure_back(values):
    packed = window.narrowest(values)
    assert len(packed) == len(values)
    for before, after in zip(values, packed, strict=True):
        assert (math.isnan(before) and math.isnan(after)) or before == after
    whole = [v for v in values if v == v and v >= 0 and v.is_integer()]
    if values and len(whole) == len(values) and max(values) <= 4_294_967_295:
        expected = "B" if max(values) <= 255 else "H" if max(values) <= 65_535 else "I"
        assert packed.typecode == expected  # whole counts in range never take doubles
    elif values:
        assert packed.typecode == "d"


def test_a_packed_entry_unpacks_as_floats_for_the_window_sums():
    entry = window.PackedCounts({"GET /a": Counts(3.0, 1.0, 0.0, {0.1: 2.0, math.inf: 3.0}),
                                 "GET /b": Counts(70_000.0, 0.0, 0.0, {0.1: 0.0, math.inf: 7e4})})
    assert entry.values.typecode == "I" and entry.values.itemsize == 4
    (a, counts_a), (b, counts_b) = entry.items()
    assert (a, b) == ("GET /a", "GET /b")
    assert (counts_a.requests, counts_a.errors, counts_a.buckets) == (3.0, 1.0,
                                                                     {0.1: 2.0, math.inf: 3.0})
    assert all(type(v) is float for v in (counts_b.requests, *counts_b.buckets.values()))
