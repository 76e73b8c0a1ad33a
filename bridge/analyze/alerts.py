"""Threshold and regression states per service, endpoint and figure. Pure, no I/O.

Every scrape adds its counts to the service's sliding windows (``window``); then each
figure is judged over its rule's window (``rules``): p95, error rates, requests per minute
and CPU once the window is full, memory, disk and "up" as last seen. A ratio figure leaves
ok only when its breach is significant for the requests involved (``significance``): 31
slow requests of 600 against a 5 % allowance is noise, 90 is not. A worse level must hold
for the rule's ``for_seconds`` before the state changes, a better one for
``resolve_seconds``; a window with fewer than ``min_requests`` requests leaves the state as
it was. Regressions against each endpoint's baseline are states too (level "regression").
States are restored from InfluxDB at start-up (``restore``). docs/alerts.md has the rules.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from ..model import Point
from . import regression, schema
from .recent import RecentBaselines
from .rules import RuleBook
from .significance import significant
from .thresholds import JOB_PREFIX, REGRESSIONS, SEVERITY, Level, Threshold
from .window import Counts, Increments, ServiceWindow

Key = tuple[str, str, str]  # service, endpoint ("_all" for service-wide), metric
# The short window already needs the critical level: its significance test may be this many
# times looser than the rule's (docs/alerts.md, "Large breaches at once").
FAST_ALPHA = 100.0
# ... and a large breach: at least this many times the warning limit (10 % errors, a p95 of
# 1,000 ms with the seed's limits), whatever the critical level is set to.
FAST_FACTOR = 2.0
# The figures judged from an endpoint's request counts.
_COUNT_METRICS = frozenset({"p95_ms", "error_rate_percent", "client_error_rate_percent",
                            "p95_regression", "error_rate_regression"})


@dataclass(frozen=True)
class Change:
    """A state change, as written to InfluxDB and posted to webhooks."""

    service: str
    endpoint: str
    metric: str
    level: Level
    previous: Level
    value: float
    threshold: float | None  # the bound crossed (None when back to ok)
    at: float
    baseline: float | None = None  # regressions: the baseline's figure

    @property
    def resolved(self) -> bool:
        return self.level == "ok"

    @property
    def no_data(self) -> bool:
        """Resolved because the window holds no requests: there is no figure."""
        return self.value != self.value

    def as_json(self) -> dict[str, object]:
        return {"service": self.service, "endpoint": self.endpoint, "metric": self.metric,
                "level": self.level, "previous": self.previous,
                "value": None if self.no_data else self.value,
                "threshold": self.threshold, "at": self.at, "resolved": self.resolved,
                "baseline": self.baseline}

    def point(self) -> Point:
        fields: dict[str, float | str] = {"level": self.level, "previous": self.previous,
                                          "severity": float(SEVERITY[self.level]),
                                          "value": self.value}
        if self.baseline is not None:
            fields["baseline"] = self.baseline
        return (schema.STATES, {"service": self.service, "endpoint": self.endpoint,
                                "metric": self.metric}, fields, int(self.at * 1000))


@dataclass
class State:
    level: Level = "ok"
    since: float = 0.0
    value: float | None = None
    baseline: float | None = None
    pending: Level | None = None
    pending_since: float = 0.0
    rule: Threshold | None = None  # the limits that applied when last judged
    at: float = 0.0  # when last judged: ``value`` is the figure over the window up to then

    def step(self, level: Level, now: float, rule: Threshold, at_once: bool = False
             ) -> Level | None:
        """Feed the level judged now; returns the previous level when the state changes.
        ``at_once``: a worse level takes effect now (a large breach in the short window)."""
        if level == self.level:
            self.pending = None
            return None
        worse = SEVERITY[level] > SEVERITY[self.level]
        if self.pending is None or (SEVERITY[self.pending] > SEVERITY[self.level]) != worse:
            self.pending_since = now  # a new excursion, in this direction
        self.pending = level
        hold = (0.0 if at_once else rule.for_seconds) if worse else rule.resolve_seconds
        if now - self.pending_since < hold:
            return None
        previous = self.level
        self.level, self.since, self.pending = level, now, None
        return previous


@dataclass(frozen=True)
class Judgement:
    endpoint: str
    metric: str
    value: float | None
    level: Level | None  # None: not judged now (too few requests, window not yet full)
    rule: Threshold
    baseline: float | None = None
    at_once: bool = False  # a critical breach in the short window: no ``for``


def _failed(metric: str, counts: Counts) -> float:
    """The requests an error-rate figure counts against (4xx for the client one)."""
    return counts.client_errors if metric == "client_error_rate_percent" else counts.errors


def ratio_level(metric: str, rule: Threshold, counts: Counts,
                test: bool = True) -> tuple[float | None, Level, bool]:
    """The figure, its level, and whether a breach of the warning limit is significant
    for the counts (when it is not, an ok state stays ok: it is the noise of a sample).
    ``test=False``: the state is already bad, the test is not needed (True is returned)."""
    client = metric == "client_error_rate_percent"
    if metric == "p95_ms":
        value = counts.percentile_ms(0.95)
    else:  # error rates; a job's failures are its errors
        value = counts.client_error_rate_percent() if client else counts.error_rate_percent()
    level = rule.level(value)
    if level == "ok" or not test:
        return value, level, level != "ok"
    bound = rule.warning
    if metric == "p95_ms":
        bad, share = counts.slower_than(bound / 1000.0), 0.05
    else:
        bad, share = _failed(metric, counts), bound / 100.0
    return value, level, significant(bad, counts.requests, share, rule.alpha)


def under_limit(metric: str, rule: Threshold, counts: Counts) -> bool:
    """Whether the figure over ``counts`` is under the warning limit (level ok). For p95 the
    count at the limit, when it is a bucket bound, decides without sorting the buckets."""
    if metric != "p95_ms":
        return 100.0 * _failed(metric, counts) < rule.warning * counts.requests
    within = counts.buckets.get(rule.warning / 1000.0)
    if within is not None:
        return within > 0.95 * counts.requests  # the 95th percentile's rank lies below it
    return rule.level(counts.percentile_ms(0.95)) == "ok"


def large_breach(metric: str, rule: Threshold, counts: Counts) -> float | None:
    """The figure over a short window when it is a large breach: critical, at least
    ``FAST_FACTOR`` times the warning limit, and significant at ``FAST_ALPHA`` times the
    rule's alpha; else None. The cheap checks come first (this runs every scrape)."""
    bar = max(FAST_FACTOR * rule.warning, rule.critical)
    requests = counts.requests
    if metric == "p95_ms":
        within = counts.buckets.get(bar / 1000.0)  # (a bucket bound: no sorting needed)
        if within is not None and requests - within <= 0.05 * requests:
            return None
        if counts.slower_than(bar / 1000.0) <= 0.05 * requests:  # the p95 is not over it
            return None
        value = counts.percentile_ms(0.95)
        bad, share = counts.slower_than(rule.warning / 1000.0), 0.05
    else:
        bad = _failed(metric, counts)
        value, share = 100.0 * bad / requests, rule.warning / 100.0
    if value is None or value < bar:
        return None
    return value if significant(bad, requests, share, min(1.0, rule.alpha * FAST_ALPHA)) \
        else None


class States(dict[Key, State]):
    """Every tracked state, with each service's endpoints that have a state of a ratio
    figure kept beside them: judging a service reads those every scrape, and a scan of all
    services' states there grew with the square of the targets."""

    def __init__(self) -> None:
        super().__init__()
        self._endpoints: dict[str, dict[str, int]] = {}  # service -> endpoint -> states

    def __setitem__(self, key: Key, state: State) -> None:
        if key not in self and key[2] in _COUNT_METRICS and key[1] != schema.ALL:
            counted = self._endpoints.setdefault(key[0], {})
            counted[key[1]] = counted.get(key[1], 0) + 1
        super().__setitem__(key, state)

    def __delitem__(self, key: Key) -> None:
        super().__delitem__(key)
        counted = self._endpoints.get(key[0])
        if counted is not None and key[1] in counted and key[2] in _COUNT_METRICS:
            counted[key[1]] -= 1
            if not counted[key[1]]:
                del counted[key[1]]

    def endpoints(self, service: str) -> Iterable[str]:
        """The endpoints (not "_all") of ``service`` with a state of a ratio figure."""
        return self._endpoints.get(service, {}).keys()


def step_states(states: States, service: str, judged: Iterable[Judgement],
                now: float) -> list[Change]:
    """Take the service's judgements made ``now`` into its states; returns the changes."""
    changes = []
    for j in judged:
        key = (service, j.endpoint, j.metric)
        state = states.get(key)
        if state is None:
            state = states[key] = State(since=now)
        state.value, state.baseline, state.rule, state.at = j.value, j.baseline, j.rule, now
        if j.level is None:
            continue
        previous = state.step(j.level, now, j.rule, j.at_once)
        if previous is not None:
            changes.append(Change(service, j.endpoint, j.metric, state.level, previous,
                                  j.value if j.value is not None else float("nan"),
                                  j.rule.bound(state.level), now, j.baseline))
    return changes


@dataclass
class Evaluator:
    book: RuleBook
    states: States = field(default_factory=States)
    windows: dict[str, ServiceWindow] = field(default_factory=dict)
    baselines: dict[tuple[str, str], regression.Baseline] = field(default_factory=dict)
    up: dict[str, dict[str, float]] = field(default_factory=dict)
    recent: RecentBaselines | None = None  # made at the first scrape, from the book

    def observe(self, service: str, target: str, found: Increments | None, now: float,
                up: bool = True, active: bool = False) -> list[Change]:
        """Add one scrape of ``target`` (its increments; None for a first scrape or a failed
        one) to its service's windows; returns the state changes it brings."""
        window = self.windows.get(service)
        if window is None:
            window = self.windows[service] = ServiceWindow(self.book.lengths())
        opened = True
        if found is not None and found.seconds > 0:
            opened = window.add(found, now)
            self._recent().take(service, window, now, self._held)
        ups = self.up.setdefault(service, {})
        was, ups[target] = ups.get(target), 1.0 if up else 0.0
        if not opened and was == ups[target]:
            # Merged into its target's open slot: judged with the slot's first scrape, at
            # most a slot later (as rules are evaluated on their own interval, not every
            # scrape's): judging every endpoint's figures is most of a scrape's cost.
            return []
        window.settle()
        changes = step_states(self.states, service, self._judge(service, window, now, active),
                              now)
        window.forget_orders()
        return changes

    def forget(self, service: str, target: str) -> None:
        """A target taken out of the configuration: gone, not down. The last target of a
        service takes the service's windows and states with it."""
        targets = self.up.get(service)
        if targets is not None:
            targets.pop(target, None)
            if targets:
                return
        self.up.pop(service, None)
        self.windows.pop(service, None)
        self._recent().forget(service)
        for key in [k for k in self.states if k[0] == service]:
            del self.states[key]

    def _judge(self, service: str, window: ServiceWindow, now: float,
               active: bool) -> Iterator[Judgement]:
        rule_of = self.book.rule
        rule = rule_of(service, schema.ALL, "up")
        if rule is not None:
            yield Judgement(schema.ALL, "up", min(self.up[service].values()),
                            rule.level(min(self.up[service].values())), rule)
        for metric, values in (("memory_percent", window.memory),
                               ("disk_percent", window.disk)):
            rule = rule_of(service, schema.ALL, metric)
            if rule is not None and values:
                value = max(values.values())
                yield Judgement(schema.ALL, metric, value, rule.level(value), rule)
        for metric in ("cpu_percent", "requests_per_minute"):
            rule = rule_of(service, schema.ALL, metric)
            if rule is None or (rule.active_only and not active):
                continue
            run = window.run(rule.window_seconds)
            rate = run.cpu_percent() if metric == "cpu_percent" else run.requests_per_minute()
            if rate is not None:
                full = window.full(rule.window_seconds, now)
                yield Judgement(schema.ALL, metric, rate,
                                rule.level(rate) if full else None, rule)
        # A service whose histogram has no endpoint label has "_all" as its one endpoint.
        longest = window.run(max(window.runs))
        # Endpoints with traffic in the longest window, and those with a state to resolve.
        endpoints = dict.fromkeys(e for e in longest.endpoints if e != schema.ALL)
        endpoints.update(dict.fromkeys(self.states.endpoints(service)))
        for endpoint in [schema.ALL, *endpoints]:
            yield from self._judge_counts(service, endpoint, window, now)
        yield from self._judge_jobs(service, window, now)

    def _judge_jobs(self, service: str, window: ServiceWindow,
                    now: float) -> Iterator[Judgement]:
        """Per job: the failure percentage over the window, and the time since its last
        success (since it was first seen, if it never succeeded)."""
        for job in {**window.job_success, **window.job_seen}:
            seen = window.job_seen.get(job, now)
            key = JOB_PREFIX + job
            rule = self.book.rule(service, key, "job_failure_percent")
            counts = window.run(rule.window_seconds).jobs.get(job) if rule else None
            if rule is not None and counts is not None and counts.requests > 0:
                yield self._ratio(service, key, "job_failure_percent", rule, counts, window,
                                  now)
            elif rule is not None:
                yield from self._no_data(service, key, "job_failure_percent", rule)
            stale = self.book.rule(service, key, "job_stale_seconds")
            if stale is not None:
                age = now - window.job_success.get(job, seen)
                yield Judgement(key, "job_stale_seconds", age, stale.level(age), stale)

    def _no_data(self, service: str, endpoint: str, metric: str,
                 rule: Threshold) -> Iterator[Judgement]:
        """An empty window: the figure has no value, and a state that exists is judged ok
        (it resolves after the rule's resolve time; the change carries no value)."""
        if (service, endpoint, metric) in self.states:
            yield Judgement(endpoint, metric, None, "ok", rule)

    def _ratio(self, service: str, endpoint: str, metric: str, rule: Threshold,
               counts: Counts, window: ServiceWindow, now: float,
               short: Counts | None = None) -> Judgement:
        """A ratio figure (p95, an error rate, a job's failures) over the window: judged
        with enough requests in a full window; leaving ok only on a significant breach.
        ``short``: the counts of the rule's short window, where a large, significant
        critical breach is critical at once."""
        state = self.states.get((service, endpoint, metric))
        leaving_ok = state is None or state.level == "ok"
        value, level, evident = ratio_level(metric, rule, counts, test=leaving_ok)
        if leaving_ok and not evident:
            level = "ok"  # not enough evidence to leave ok
        judged = counts.requests >= rule.min_requests and window.full(rule.window_seconds, now)
        if (short is not None and short.requests >= rule.min_requests
                and window.full(rule.fast_window_seconds, now)):
            if level != "critical" and (fast := large_breach(metric, rule, short)) is not None:
                return Judgement(endpoint, metric, fast, "critical", rule, at_once=True)
            if not leaving_ok and under_limit(metric, rule, short):
                level = "ok"  # a bad state lasts while the short window still shows it
        return Judgement(endpoint, metric, value, level if judged else None, rule)

    def _judge_counts(self, service: str, endpoint: str, window: ServiceWindow,
                      now: float) -> Iterator[Judgement]:
        counts_of: dict[float, Counts] = {}

        def counts(length: float) -> Counts | None:
            if length not in counts_of:
                run = window.run(length)
                found = run.service() if endpoint == schema.ALL else run.endpoints.get(endpoint)
                if found is None:
                    return None
                counts_of[length] = found
            return counts_of[length]

        for metric in ("p95_ms", "error_rate_percent", "client_error_rate_percent"):
            rule = self.book.rule(service, endpoint, metric)
            if rule is None:
                continue
            if (c := counts(rule.window_seconds)) is None or c.requests <= 0:
                yield from self._no_data(service, endpoint, metric, rule)
                continue
            short = (counts(rule.fast_window_seconds)
                     if 0 < rule.fast_window_seconds < rule.window_seconds else None)
            yield self._ratio(service, endpoint, metric, rule, c, window, now, short)
        # The stored baseline; where there is none yet, the previous window's.
        base = self.baselines.get((service, endpoint)) or self._recent().found.get(
            (service, endpoint))
        for metric, check in (("p95_regression", regression.latency),
                              ("error_rate_regression", regression.errors)):
            rule = self.book.rule(service, endpoint, metric)
            if rule is None:
                continue
            if base is None or (c := counts(rule.window_seconds)) is None or c.requests <= 0:
                yield from self._no_data(service, endpoint, metric, rule)
                continue
            verdict = check(c, base, rule)
            judged = window.full(rule.window_seconds, now)
            yield Judgement(endpoint, metric, verdict.current,
                            ("regression" if verdict.regressed else "ok") if judged else None,
                            rule, verdict.baseline)

    def set_baselines(self, found: Mapping[tuple[str, str], regression.Baseline]) -> None:
        """New baselines, except where a regression is on or pending: there the old one is
        held, or a long regression would become its own baseline and resolve unfixed."""
        kept = {k: v for k, v in self.baselines.items() if self._held(*k)}
        self.baselines = {**found, **kept}

    def _held(self, service: str, endpoint: str) -> bool:
        for metric in REGRESSIONS:
            state = self.states.get((service, endpoint, metric))
            if state is not None and "regression" in (state.level, state.pending):
                return True
        return False

    def _recent(self) -> RecentBaselines:
        if self.recent is None:
            rule = self.book.base.get("p95_regression")
            self.recent = RecentBaselines(rule.window_seconds if rule else math.inf)
        return self.recent

    def restore(self, key: Key, level: Level, since: float, value: float | None) -> None:
        """Take up a state stored before a restart (so a breach that goes on is not
        announced again). States already seen since the start win."""
        if key not in self.states and level in SEVERITY:
            # (its value is the one stored with its last change, judged then)
            self.states[key] = State(level=level, since=since, value=value, at=since)

    def snapshot(self) -> list[tuple[Key, State]]:
        """Every tracked state, worst first."""
        return sorted(self.states.items(), key=lambda kv: (-SEVERITY[kv[1].level], kv[0]))
