"""Threshold states: windows exact against the raw requests, significance, for/resolve,
overrides, and regressions against a baseline."""

from __future__ import annotations

import dataclasses
import math
import random
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from promflux.bridge.analyze import regression
from promflux.bridge.analyze.alerts import Evaluator, State, large_breach, under_limit
from promflux.bridge.analyze.derive import TargetDeriver
from promflux.bridge.analyze.quantile import quantile
from promflux.bridge.analyze.regression import Baseline
from promflux.bridge.analyze.rules import Override, RuleBook
from promflux.bridge.analyze.significance import above_baseline, binomial_tail, significant
from promflux.bridge.analyze.thresholds import DEFAULTS, REGRESSION_DEFAULTS, Threshold
from promflux.bridge.analyze.window import Counts, Increments
from promflux.bridge.ingest.exposition import parse
from promflux.exporter.metrics import LATENCY_BUCKETS, ExporterMetrics

ROUTE = "GET /items/{id}"


def truth_p95(latencies: list[float]) -> float | None:
    """histogram_quantile over buckets counted straight from the raw latencies."""
    bounds = sorted(LATENCY_BUCKETS) + [math.inf]
    cumulative = [(b, float(sum(1 for x in latencies if x <= b))) for b in bounds]
    value = quantile(0.95, cumulative)
    return None if value is None else value * 1000.0


@pytest.mark.parametrize("interval", [5.0, 1.0])  # 1 s: scrapes merged into 2 s slots
def test_window_figures_equal_the_truth_of_the_raw_requests_in_the_window(interval):
    rng = random.Random(7)
    registry = CollectorRegistry()
    histogram = ExporterMetrics("api", registry).request_duration
    deriver = TargetDeriver("api")
    window = 60.0
    rules = RuleBook({m: dataclasses.replace(t, window_seconds=window)
                      for m, t in DEFAULTS.items()})
    evaluator = Evaluator(rules)
    requests: list[tuple[float, float, int, str]] = []  # (time, latency, status, route)
    judged: dict[tuple[str, str], tuple[float, float | None]] = {}  # the truth when judged
    merged = 0  # scrapes merged into an open slot (the service's p95 shown as judged)
    for step in range(int(400 / interval)):
        now = step * interval
        if step:
            for _ in range(rng.randrange(0, int(8 * interval))):
                latency = rng.choice([rng.uniform(0.001, 0.05), rng.uniform(0.2, 2.0)])
                status = 500 if rng.random() < 0.1 else 200
                route = rng.choice(["/items/{id}", "/health"])
                histogram.labels("api", route, "GET", str(status)).observe(latency)
                requests.append((now, latency, status, route))
        derived = deriver.derive_all(parse(generate_latest(registry).decode(), deriver.cache),
                                     now, now, target="t1")
        evaluator.observe("api", "t1", derived.increments, now, active=True)
        # The sums read every third scrape: merged scrapes are held until then (or until
        # a slot opens), and must then count as if each had been added at once.
        read = step % 3 == 0
        if read:
            evaluator.windows["api"].settle()
        run = evaluator.windows["api"].run(window)
        if not run.entries:
            continue
        # What the window covers: whole entries (slots), from the oldest one's first scrape.
        oldest = run.entries[0].opened
        covered = now - oldest + interval if step else 0.0
        assert min(now, window) <= covered <= window + evaluator.windows["api"].slot + interval
        everything = [r for r in requests if r[0] >= oldest]
        inside = [r for r in everything if r[3] == "/items/{id}"]
        counts = run.endpoints.get(ROUTE)
        if everything:  # the service: both routes summed
            total = run.service()
            assert not read or total.requests == len(everything)
            assert not read or total.percentile_ms(0.95) == truth_p95([r[1] for r in everything])
            merged += not shown(evaluator, ("_all", "p95_ms"), now,
                                truth_p95([r[1] for r in everything]), judged)
        if not inside:
            continue
        errors = sum(1 for r in inside if r[2] == 500)
        if read:
            assert counts is not None and counts.requests == len(inside)
            assert counts.errors == errors
            assert counts.percentile_ms(0.95) == truth_p95([r[1] for r in inside])
            assert math.isclose(run.requests_per_minute() or 0.0,
                                len(everything) * 60.0 / covered)
        shown(evaluator, (ROUTE, "p95_ms"), now, truth_p95([r[1] for r in inside]), judged)
        shown(evaluator, (ROUTE, "error_rate_percent"), now, 100.0 * errors / len(inside),
              judged)
    # at 5 s every scrape opens a slot; at 1 s one in ``per`` does (the first one's
    # interval has no requests of the service yet)
    per, scrapes = math.ceil(evaluator.windows["api"].slot / interval), int(400 / interval)
    assert merged == (0 if per == 1 else (scrapes - 1) - (scrapes - 1) // per - 1)


def shown(evaluator: Evaluator, key: tuple[str, str], now: float, truth: float | None,
          judged: dict[tuple[str, str], tuple[float, float | None]]) -> bool:
    """Whether ``key`` was judged now. The state's figure is the truth of the window when
    it was judged: now, at a scrape that opened a slot; else at its slot's first scrape,
    less than a slot ago."""
    state = evaluator.states[("api", *key)]
    window = evaluator.windows["api"]
    if state.at == now:
        assert state.value == truth
        judged[key] = (now, truth)
        return True
    # merged into the open slot: shown as judged at its first scrape
    assert key in judged and judged[key] == (state.at, state.value)
    assert 0 < now - state.at < window.slot
    return False


def test_slower_than_agrees_with_the_percentile():
    counts = Counts()
    counts.buckets = {0.1: 50.0, 0.25: 90.0, 0.5: 96.0, 1.0: 100.0, math.inf: 100.0}
    counts.requests = 100.0
    p95 = counts.percentile_ms(0.95)
    assert p95 is not None
    assert math.isclose(counts.slower_than(p95 / 1000.0), 5.0)
    assert counts.slower_than(0.5) == 4.0  # a bound: exact
    assert counts.slower_than(5.0) == 0.0


@given(st.integers(0, 40), st.integers(1, 40), st.sampled_from([0.01, 0.05, 0.3, 0.9]))
def test_binomial_tail_is_exact(k: int, n: int, p: float):
    exact = sum(Fraction(math.comb(n, i)) * Fraction(p) ** i * (1 - Fraction(p)) ** (n - i)
                for i in range(k, n + 1))
    assert math.isclose(binomial_tail(k, n, p), float(exact), rel_tol=1e-9, abs_tol=1e-15)


def test_significance_separates_noise_from_a_real_excess():
    assert not significant(31, 600, 0.05, 0.0001)  # 5.2 % of 600 against 5 %
    assert significant(90, 600, 0.05, 0.0001)      # 15 %
    assert not significant(2, 5, 0.05, 0.0001)     # 40 % of 5: too few to say
    assert significant(2, 5, 0.05, 1.0)            # no test asked for


def test_for_and_resolve():
    rule = Threshold("p95_ms", 500, 1000, for_seconds=30, resolve_seconds=60)
    state = State()
    seen = []
    levels = ["ok", "warning", "warning", "ok", "warning", "warning", "warning", "warning",
              "critical", "ok", "warning", "ok", "ok", "ok", "ok", "ok", "ok", "ok"]
    for t, level in enumerate(levels):
        previous = state.step(level, t * 10.0, rule)  # type: ignore[arg-type]
        if previous is not None:
            seen.append((t * 10, previous, state.level))
    # 20 s of warning is not enough; 30 s is. Critical needs its own 30 s (it got 10).
    # Better levels need 60 s without a break back to the current level.
    assert seen == [(70, "ok", "warning"), (170, "warning", "ok")]


def test_overrides_apply_in_order_and_switch_figures_off():
    book = RuleBook({**DEFAULTS, **REGRESSION_DEFAULTS}, [
        Override(service="ingest*", limits={"p95_ms": {"warning": 50.0, "critical": 200.0}}),
        Override(endpoint="/reports/*", limits={"p95_ms": {"warning": 5000.0,
                                                           "critical": 9000.0}}),
        Override(service="ingest", endpoint="POST /ingest/bulk", limits={"p95_ms": None}),
        Override(endpoint="GET /health", limits={"p95_regression": None}),
    ])
    p95 = book.rule("ingest", "POST /ingest/one", "p95_ms")
    assert p95 is not None and (p95.warning, p95.critical) == (50.0, 200.0)
    assert p95.for_seconds == DEFAULTS["p95_ms"].for_seconds  # not given: inherited
    assert book.rule("ingest", "POST /ingest/bulk", "p95_ms") is None
    assert book.rule("ingest", "_all", "p95_ms").warning == 50.0  # type: ignore[union-attr]
    report = book.rule("api", "GET /reports/{id}", "p95_ms")
    assert report is not None and report.warning == 5000.0
    assert book.rule("api", "_all", "p95_ms").warning == 500.0  # type: ignore[union-attr]
    assert book.rule("api", "GET /health", "p95_regression") is None
    assert book.rule("api", "GET /health", "p95_ms") is not None


def counts_of(latencies: list[float], errors: int = 0) -> Counts:
    counts = Counts()
    for bound in sorted(LATENCY_BUCKETS) + [math.inf]:
        counts.buckets[bound] = float(sum(1 for x in latencies if x <= bound))
    counts.requests = float(len(latencies))
    counts.errors = float(errors)
    return counts


def test_a_latency_regression_needs_size_a_bucket_and_significance():
    rng = random.Random(3)
    rule = REGRESSION_DEFAULTS["p95_regression"]
    base = Baseline(counts_of([rng.uniform(0.02, 0.047) for _ in range(3000)]), "test")
    slow = counts_of([rng.uniform(0.2, 0.42) for _ in range(100)]
                     + [rng.uniform(0.02, 0.047) for _ in range(500)])
    assert regression.latency(slow, base, rule).regressed
    same = counts_of([rng.uniform(0.02, 0.047) for _ in range(600)])
    assert not regression.latency(same, base, rule).regressed
    nudged = counts_of([rng.uniform(0.03, 0.05) for _ in range(600)])  # within one bucket
    assert not regression.latency(nudged, base, rule).regressed
    few = counts_of([rng.uniform(0.2, 0.42) for _ in range(3)]
                    + [rng.uniform(0.02, 0.047) for _ in range(20)])
    assert not regression.latency(few, base, rule).regressed  # 3 slow of 23: not evidence


def test_an_error_regression_needs_ratio_points_and_significance():
    rule = REGRESSION_DEFAULTS["error_rate_regression"]
    base = Baseline(counts_of([0.01] * 5000, errors=50), "test")  # 1 %
    assert regression.errors(counts_of([0.01] * 600, errors=30), base, rule).regressed
    assert not regression.errors(counts_of([0.01] * 600, errors=8), base, rule).regressed
    assert not regression.errors(counts_of([0.01] * 20, errors=1), base, rule).regressed


def test_a_short_noisy_baseline_is_not_taken_for_more_than_it_knows():
    # Six minutes of history at 2.1 % (15 of 720) against a window at 4.5 % (27 of 600):
    # against 2.1 % as if it were exact, 27 errors would be far out (p < 0.001); as two
    # samples, they are not. Ten percent is.
    rule = REGRESSION_DEFAULTS["error_rate_regression"]
    base = Baseline(counts_of([0.01] * 720, errors=15), "previous hour")
    assert binomial_tail(27, 600, 15 / 720) < rule.alpha
    assert not regression.errors(counts_of([0.01] * 600, errors=27), base, rule).regressed
    assert regression.errors(counts_of([0.01] * 600, errors=60), base, rule).regressed
    assert not above_baseline(10, 100, 20, 100, 0.5)  # fewer than the baseline: never


def test_a_restored_state_is_not_judged_before_the_window_has_filled_again():
    rule = dataclasses.replace(DEFAULTS["error_rate_percent"], window_seconds=60.0,
                               for_seconds=0.0, resolve_seconds=0.0)
    evaluator = Evaluator(RuleBook({"error_rate_percent": rule}))
    evaluator.restore(("api", ROUTE, "error_rate_percent"), "critical", 100.0, 40.0)
    restored = evaluator.states[("api", ROUTE, "error_rate_percent")]
    assert (restored.value, restored.at) == (40.0, 100.0)  # the value as stored, and when
    healthy = Counts(50.0, 0.0, 0.0, {0.1: 50.0, math.inf: 50.0})
    changes = []
    for step in range(1, 20):  # a healthy scrape every 5 s from t = 1000
        found = Increments("t1", 5.0, {ROUTE: healthy})
        now = 1000.0 + 5 * step
        changes += [(c.level, now - 1000.0) for c in evaluator.observe("api", "t1", found, now)]
        if now - 1000.0 < 60.0:  # the figure is shown, the state is kept
            state = evaluator.states[("api", ROUTE, "error_rate_percent")]
            assert state.level == "critical" and state.value == 0.0 and state.at == now
    assert changes == [("ok", 60.0)]  # judged once the window is full: resolved once


def test_an_endpoint_whose_traffic_stops_shows_no_data_and_its_state_resolves():
    """A slow endpoint goes warning; then its traffic stops. Once its window is empty the
    figure is "no data" (None) and the state resolves (a change with no value)."""
    registry = CollectorRegistry()
    histogram = ExporterMetrics("api", registry).request_duration
    deriver = TargetDeriver("api")
    evaluator = Evaluator(RuleBook(DEFAULTS))
    changes = []
    for step in range(200):  # 5 s scrapes: 1,000 s
        now = step * 5.0
        if 0 < step <= 80:  # 400 s of 20 requests a scrape, all at 0.7 s: p95 warning
            for _ in range(20):
                histogram.labels("api", "/slow", "GET", "200").observe(0.7)
        derived = deriver.derive_all(parse(generate_latest(registry).decode(), deriver.cache),
                                     now, now, target="t1")
        changes += evaluator.observe("api", "t1", derived.increments, now, True, True)
        if step == 80:
            state = evaluator.states["api", "GET /slow", "p95_ms"]
            assert state.level != "ok" and state.value is not None
    state = evaluator.states["api", "GET /slow", "p95_ms"]
    assert state.level == "ok" and state.value is None
    resolved = [c for c in changes if c.metric == "p95_ms" and c.endpoint == "GET /slow"
                and c.resolved]
    assert len(resolved) == 1 and resolved[0].no_data
    assert resolved[0].as_json()["value"] is None
    # Resolved when the window emptied, not at once: 400 s + the window (300 s) at most,
    # plus the resolve time.
    rule = DEFAULTS["p95_ms"]
    assert 400 < resolved[0].at <= 400 + rule.window_seconds + rule.resolve_seconds + 5


def _error_run(evaluator: Evaluator, start: float, seconds: float, share: float,
               rng: random.Random) -> list:
    """5 s scrapes of 10 requests each, each failing with probability ``share``; the changes
    with their times."""
    changes = []
    for k in range(int(seconds // 5)):
        errors = float(sum(rng.random() < share for _ in range(10)))
        counts = Counts(10.0, errors, 0.0, {0.05: 10.0, math.inf: 10.0})
        now = start + 5.0 * (k + 1)
        changes += [(now, c) for c in evaluator.observe("svc", "t", Increments(
            "t", 5.0, {ROUTE: counts}), now) if c.endpoint == ROUTE]
    return changes


def test_a_large_burst_is_critical_at_once_and_a_small_breach_waits_for_its_window():
    """30 % errors (six times the 5 % limit) show in the two-minute short window and are
    critical without waiting for the five-minute window and ``for``; steady 2 % errors
    change nothing."""
    rng = random.Random(4)
    quiet = Evaluator(RuleBook(DEFAULTS))
    assert _error_run(quiet, 0.0, 1800.0, 0.02, rng) == []

    burst = Evaluator(RuleBook(DEFAULTS))
    _error_run(burst, 0.0, 600.0, 0.02, rng)
    changes = _error_run(burst, 600.0, 240.0, 0.30, rng)
    first_at, first = changes[0]
    assert first.metric == "error_rate_percent" and first.level == "critical"
    assert first_at - 600.0 <= 120.0, changes
    # Without the short window: the five-minute window reaches 10 % after about 80 s of
    # the burst, then critical must hold for the rule's minute.
    slow = Evaluator(RuleBook({k: dataclasses.replace(v, fast_window_seconds=0.0)
                               for k, v in DEFAULTS.items()}))
    rng = random.Random(4)
    _error_run(slow, 0.0, 1800.0, 0.02, rng)
    _error_run(slow, 1800.0, 600.0, 0.02, rng)
    later = _error_run(slow, 2400.0, 240.0, 0.30, rng)
    assert later and later[0][0] - 2400.0 > first_at - 600.0

    # What counts as large, over 240 requests: critical, at least twice the warning limit
    # and significant; for p95, over twice its limit.
    rule, p95 = DEFAULTS["error_rate_percent"], DEFAULTS["p95_ms"]
    assert large_breach("error_rate_percent", rule, Counts(240, 36)) == 15.0
    assert large_breach("error_rate_percent", rule, Counts(240, 22)) is None  # 9 %
    assert large_breach("error_rate_percent", rule, Counts(20, 3)) is None  # not significant
    # A burst's first two minutes that fell short (10.2 %) is still large: p about 0.002
    assert large_breach("error_rate_percent", rule, Counts(205, 21)) == 100.0 * 21 / 205
    slow = {0.5: 100.0, 1.0: 120.0, 2.5: 240.0, math.inf: 240.0}
    assert large_breach("p95_ms", p95, Counts(240, 0, 0, slow)) > 1000.0
    assert large_breach("p95_ms", p95, Counts(240, 0, 0, {0.5: 100.0, 1.0: 235.0,
                                                          math.inf: 240.0})) is None


@given(st.lists(st.integers(min_value=0, max_value=50), min_size=len(LATENCY_BUCKETS) + 1,
                max_size=len(LATENCY_BUCKETS) + 1),
       st.integers(min_value=0, max_value=30))
def test_under_limit_agrees_with_the_figure(own, errors):
    """The short window's cheap "back under the limit" check says what the figure says."""
    bounds = sorted(LATENCY_BUCKETS) + [math.inf]
    cumulative, total = {}, 0.0
    for bound, n in zip(bounds, own, strict=True):
        total += n
        cumulative[bound] = total
    counts = Counts(total, min(errors, total), 0.0, cumulative)
    for metric in ("p95_ms", "error_rate_percent"):
        rule = DEFAULTS[metric]
        if total == 0:
            continue
        figure = (counts.percentile_ms(0.95) if metric == "p95_ms"
                  else counts.error_rate_percent())
        if figure is not None and figure == rule.warning:
            continue  # exactly at the limit: either answer is a tie
        assert under_limit(metric, rule, counts) == (rule.level(figure) == "ok"), (
            metric, figure, cumulative)


def _first_hour(rise_at: float | None, minutes: float, seed: int) -> list:
    """A service that starts with the bridge (no stored history at all): 3 requests a
    second of 30-45 ms, from ``rise_at`` on ten times slower (300-450 ms: under the 500 ms
    limit, so only a regression can tell). 5 s scrapes; the default rules."""
    rng = random.Random(seed)
    registry = CollectorRegistry()
    histogram = ExporterMetrics("api", registry).request_duration
    deriver = TargetDeriver("api")
    evaluator = Evaluator(RuleBook({**DEFAULTS, **REGRESSION_DEFAULTS}))
    changes = []
    for step in range(int(minutes * 12) + 1):
        now = step * 5.0
        if step:
            slow = rise_at is not None and now > rise_at
            for _ in range(15):
                latency = rng.uniform(0.03, 0.045) * (10 if slow else 1)
                histogram.labels("api", "/items/{id}", "GET", "200").observe(latency)
        derived = deriver.derive_all(parse(generate_latest(registry).decode(), deriver.cache),
                                     now, now, target="t1")
        changes += [(now, c) for c in evaluator.observe("api", "t1", derived.increments, now,
                                                        active=True)]
    return changes


@pytest.mark.parametrize("seed", range(3))
def test_a_regression_in_the_first_hour_is_found_from_the_previous_window(seed):
    """No stored baseline exists yet: a 10x latency rise 6 minutes after the first start
    (one full window of history) is a regression within 5 minutes of the rise, against
    the bridge's own previous window."""
    changes = _first_hour(rise_at=360.0, minutes=15, seed=seed)
    found = [(t, c) for t, c in changes if c.metric == "p95_regression"
             and c.level == "regression" and c.endpoint == "GET /items/{id}"]
    assert found, changes
    assert found[0][0] - 360.0 <= 300.0, found[0][0]
    assert all(c.metric != "p95_ms" for _, c in changes)  # under the limit all along


@pytest.mark.parametrize("seed", range(3))
def test_steady_traffic_in_the_first_hour_changes_no_state(seed):
    assert _first_hour(rise_at=None, minutes=60, seed=seed) == []


@given(st.lists(st.tuples(st.booleans(), st.sampled_from(["api", "web"]),
                          st.sampled_from(["_all", "GET /a", "GET /b"]),
                          st.sampled_from(["p95_ms", "error_rate_percent", "up",
                                           "cpu_percent"])), max_size=40))
def test_the_states_index_names_the_endpoints_a_scan_of_every_state_finds(steps):
    from promflux.bridge.analyze.alerts import State, States

    states = States()
    for add, *key in steps:
        if add:
            states[tuple(key)] = State(since=0.0)
        elif tuple(key) in states:
            del states[tuple(key)]
        for service in ("api", "web"):
            assert set(states.endpoints(service)) == {
                k[1] for k in states if k[0] == service and k[1] != "_all"
                and k[2] in ("p95_ms", "error_rate_percent", "client_error_rate_percent")}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_idle_endpoints_left_out_of_the_increments_change_no_judgement(seed):
    """A scrape gives no counts for an endpoint idle over its interval. The states, every
    change and the window sums are those of the same scrapes with the idle endpoints' zero
    counts added, through breaches of p95 and error rate on endpoints that come and go."""
    rng = random.Random(seed)
    routes = ["GET /a", "GET /b", "GET /c", "GET /d"]
    rules = RuleBook({m: dataclasses.replace(t, window_seconds=60.0, for_seconds=10.0,
                                             resolve_seconds=10.0)
                      for m, t in DEFAULTS.items()})
    with_idle, without = Evaluator(rules), Evaluator(rules)
    changes: tuple[list[object], list[object]] = ([], [])
    for step in range(1, 240):
        now, phase = step * 2.0, (step // 40) % 3  # traffic moves from route to route
        full: dict[str, Counts] = {}
        for i, route in enumerate(routes):
            busy = (i + phase) % 3 == 0 or (i == 3 and rng.random() < 0.2)
            requests = float(rng.randrange(1, 12)) if busy else 0.0
            slow = float(rng.randrange(0, int(requests) + 1)) if phase == 1 else 0.0
            errors = float(rng.randrange(0, int(requests) + 1)) if phase == 2 else 0.0
            fast = requests - slow
            full[route] = Counts(requests, errors, 0.0,
                                 {0.1: fast, 0.5: fast, 2.5: requests, math.inf: requests})
        busy_only = {k: c for k, c in full.items() if not c.empty}
        for evaluator, counts, seen in ((with_idle, full, changes[0]),
                                        (without, busy_only, changes[1])):
            total = Counts()
            for c in counts.values():
                total.add(c)
            inc = Increments("t1", 2.0, {k: Counts(c.requests, c.errors, c.client_errors,
                                                   dict(c.buckets)) for k, c in counts.items()},
                             total=total)
            seen += evaluator.observe("api", "t1", inc, now, active=True)
    assert repr(changes[0]) == repr(changes[1])  # (a resolved change's value is NaN)
    levels = {c.level for c in changes[0]}  # (a test that judged nothing could not fail)
    assert {"warning", "critical"} & levels and "ok" in levels
    assert repr(with_idle.states) == repr(without.states)
    for length in with_idle.windows["api"].runs:
        sums = {k: (c.requests, c.errors, c.buckets) for k, c in
                with_idle.windows["api"].run(length).endpoints.items() if not c.empty}
        assert sums == {k: (c.requests, c.errors, c.buckets) for k, c in
                        without.windows["api"].run(length).endpoints.items()}
