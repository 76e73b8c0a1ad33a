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
        for key in draw(st.lists(st.sampled_from(["GET /a", "GET /b", "POST /c"]),
                                 unique=True, max_size=3)):
            steps = draw(st.lists(st.integers(0, 9), min_size=len(BOUNDS),
                                  max_size=len(BOUNDS)))
            cumulative = [float(sum(steps[:i + 1])) for i in range(len(BOUNDS))]
            endpoints[key] = Counts(cumulative[-1], float(draw(st.integers(0, 3))), 0.0,
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
