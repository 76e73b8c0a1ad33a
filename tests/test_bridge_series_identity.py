"""A series is its name and label set: state survives pruned caches, reordered labels,
repeated series, float rounding and histograms that are not cumulative. Pure."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from promflux.bridge.analyze import bucket_fields
from promflux.bridge.analyze.derive import TargetDeriver
from promflux.bridge.analyze.rates import CounterTracker
from promflux.bridge.ingest import exposition
from promflux.bridge.ingest.exposition import ExpositionError, SeriesCache, parse

from .apps.misbehaving import HTML, _State, page


def _requests(points: list) -> float:
    return sum(f["requests"] for m, t, f, _ in points
               if m == "performance_metrics" and t["endpoint"] != "_all")


def _scrape(deriver: TargetDeriver, text: str, ts: float) -> list:
    return deriver.derive(parse(text, deriver.cache), ts)


def test_a_failed_parse_prunes_the_cache_but_no_count_restarts():
    state, deriver = _State(), TargetDeriver("fault")
    assert _scrape(deriver, page(state), 0.0) is not None  # baseline, 100 routes
    state.count += 20
    assert _requests(_scrape(deriver, page(state), 1.0)) == 2000
    state.count += 20
    for bad in (HTML, "x" * 10 + "\n", page(state)[:5000]):
        with pytest.raises(ExpositionError):
            parse(bad, deriver.cache)
    # The pure core prunes its cache to the failed answer's few series (parsed anew
    # below); the compiled one keeps the last good answer's order. Either way:
    if exposition.compiled is None:
        assert len(deriver.cache) < 100
    else:
        assert len(deriver.cache.order[1]) == 1302  # (the good page's series)
    state.count += 20
    points = _scrape(deriver, page(state), 3.0)
    assert _requests(points) == 4000  # the gap's 40 per route, not 60 from zero
    assert deriver.restarts == 0


def test_reordered_labels_are_the_same_series():
    state, deriver = _State(), TargetDeriver("fault")
    _scrape(deriver, page(state), 0.0)
    state.count += 5
    assert _requests(_scrape(deriver, page(state, reorder=True), 1.0)) == 500
    state.count += 5
    assert _requests(_scrape(deriver, page(state), 2.0)) == 500


def test_a_repeated_series_counts_once_and_is_reported():
    state, deriver = _State(), TargetDeriver("fault")
    _scrape(deriver, page(state), 0.0)
    state.count += 7
    derived = deriver.derive_all(parse(page(state, repeat=True), deriver.cache), 1.0)
    assert _requests(derived.points) == 700
    assert deriver.duplicates == 100 and "repeated" in derived.warning
    state.count += 1
    derived = deriver.derive_all(parse(page(state), deriver.cache), 2.0)
    assert _requests(derived.points) == 100
    assert derived.warning == ""


@given(st.permutations(["a", "b", "c", "d"]), st.permutations(["a", "b", "c", "d"]))
def test_any_label_order_parses_to_one_object(first, second):
    def line(order: list[str]) -> str:
        return "m{" + ",".join(f'{k}="{k}v"' for k in order) + "} 1\n"

    text = line(first) + line(second)
    one, two = parse(text, SeriesCache()).samples
    assert one[0] is two[0]


def test_float_rounding_is_not_a_restart():
    tracker: CounterTracker[str] = CounterTracker()
    tracker.update(0.0, {"cpu": 1234.567891})
    increases, _ = tracker.update(1.0, {"cpu": 1234.567891 - 1e-13})
    assert increases == {"cpu": 0.0} and tracker.restarts == 0
    increases, _ = tracker.update(2.0, {"cpu": 1234.567891})
    assert increases == {"cpu": 0.0}  # the rounding step is not counted back either
    increases, _ = tracker.update(3.0, {"cpu": 3.0})
    assert increases == {"cpu": 3.0} and tracker.restarts == 1  # a real restart


def test_cpu_stays_true_when_a_float_counter_steps_back():
    state, deriver = _State(), TargetDeriver("fault")
    _scrape(deriver, page(state), 0.0)
    points = _scrape(deriver, page(state, cpu_back=True), 1.0)
    cpu = [f["cpu_percent"] for m, _, f, _ in points if "cpu_percent" in f]
    assert cpu == [0.0] and deriver.restarts == 0


@pytest.mark.parametrize("counts", [
    {0.1: 5.0, 0.5: 3.0, float("inf"): 9.0},   # falls at 0.5
    {0.1: 9.0, 0.5: 9.0, float("inf"): 2.0},   # falls at +Inf
])
def test_buckets_that_fall_are_refused_not_stored_negative(counts):
    into: dict[float, float] = {}
    with pytest.raises(bucket_fields.NotCumulative):
        bucket_fields.fields(counts, into)
    assert into == {}


def test_rounding_below_the_previous_bucket_is_raised_to_it():
    row = bucket_fields.fields({0.1: 3.0, 0.5: 3.0 - 1e-15, float("inf"): 4.0})
    assert all(v >= 0 for v in row.values()) and sum(row.values()) == 4.0


def _histogram(counts: list[float], total: float) -> str:
    bounds = ["0.1", "0.5", "+Inf"]
    lines = [f'http_request_duration_seconds_bucket{{route="/a",method="GET",status="200",'
             f'le="{le}"}} {c}' for le, c in zip(bounds, counts, strict=True)]
    lines.append(f'http_request_duration_seconds_count{{route="/a",method="GET",'
                 f'status="200"}} {total}')
    return "\n".join(lines) + "\n"


def test_a_non_cumulative_histogram_writes_no_negative_field():
    deriver = TargetDeriver("api")
    _scrape(deriver, _histogram([0, 0, 0], 0), 0.0)
    derived = deriver.derive_all(parse(_histogram([10, 2, 3], 15), deriver.cache), 1.0)
    points = derived.points  # each bucket on its own
    buckets = [f for m, _, f, _ in points if m == "latency_buckets"]
    assert buckets == []
    perf = [f for m, t, f, _ in points if m == "performance_metrics" and t["endpoint"] == "/a"]
    assert perf[0]["requests"] == 15 and "p95_ms" not in perf[0]
    assert deriver.refused_histograms == 1 and "le=0.5" in derived.warning


def test_every_stored_figure_is_non_negative_under_random_faults():
    """Random walks of counts with restarts, faults and reorders: no negative count."""
    rng = random.Random(7)
    state, deriver = _State(), TargetDeriver("fault")
    for step in range(60):
        state.count += rng.randrange(0, 5)
        if rng.random() < 0.1:
            state.count = rng.randrange(0, 3)  # a restart
        text = page(state, reorder=rng.random() < 0.3, repeat=rng.random() < 0.2,
                    cpu_back=rng.random() < 0.3)
        if rng.random() < 0.2:
            text = text[:rng.randrange(len(text))]
        try:
            points = _scrape(deriver, text, float(step))
        except ExpositionError:
            continue
        for _, _, fields, _ in points:
            for name, value in fields.items():
                assert not (isinstance(value, float) and value < 0), (name, value)


def test_permutations_of_a_series_share_state_through_the_tracker():
    deriver = TargetDeriver("api")
    orders = list(itertools.permutations(['route="/a"', 'method="GET"', 'status="200"']))
    for step, order in enumerate(orders):
        text = f'http_request_duration_seconds_count{{{",".join(order)}}} {step * 3}\n'
        points = _scrape(deriver, text, float(step))
        if step:
            assert _requests(points) == 3


def test_compiled_series_are_not_the_cycle_collectors_and_leave_the_table_when_freed():
    """A churning target's series give the cycle collector nothing to walk, and the table
    that keeps one object per label set forgets a series once nothing holds it."""
    import gc

    from promflux.bridge import model
    from promflux.bridge.native import compiled

    if compiled is None:
        pytest.skip("the pure core: its series are dataclasses with weak references")
    labels = (("kind", "k-freed"), ("service", "churn"))
    series = model.intern_series("events_total", labels)
    assert model.intern_series("events_total", tuple(labels)) is series
    assert not gc.is_tracked(series)
    assert (series.name, series.labels, series.label("kind"), series.label("x", "d"),
            series.label("x")) == ("events_total", labels, "k-freed", "d", "")
    assert repr(series) == f"Series(name='events_total', labels={labels!r})"
    assert series in model.live_series() and series != model.intern_series("other_total")
    with pytest.raises(TypeError):
        type(series)("events_total", labels)
    address = id(series)
    del series
    assert all(id(s) != address for s in model.live_series())
    again = model.intern_series("events_total", labels)
    assert again.label("kind") == "k-freed" and again in model.live_series()
