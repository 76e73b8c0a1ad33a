"""One scrape of one target -> InfluxDB points: percentiles from bucket increases, rates
from counter increases, gauges as they are. Pure, no I/O (the scrape loop calls it).

A ``TargetDeriver`` keeps what one target needs between scrapes: the series cache of the
parser, the counter state, and each series' role in the schema, decided once per series.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..model import Point, Scrape, Series, SeriesCache
from ..native import compiled
from . import bucket_fields, schema
from .quantile import EPSILON, normalize_map, quantile
from .rates import CounterTracker, error_rate_percent, per_minute
from .window import Counts, Increments, endpoint_key, job_successes, resource_figures

_CORE_FIELDS = frozenset(c[3] for c in schema.CPU_COUNTERS.values())

# Roles (first element of a role tuple).
_GAUGE, _START, _LAT_BUCKET, _LAT_COUNT, _LAT_SUM, _REQ_COUNT = range(6)
_COUNTER, _HIST_BUCKET, _HIST_COUNT, _HIST_SUM, _CPU = range(6, 11)
_CUMULATIVE_FROM = _LAT_BUCKET  # roles from here on are cumulative counters


def _le(series: Series) -> float | None:
    text = series.label("le")
    value = _BOUNDS.get(text)
    if value is None:
        try:
            value = float(text)
        except ValueError:
            return None
        if len(_BOUNDS) >= 10_000:  # (bounded, whatever the targets send)
            _BOUNDS.clear()
        _BOUNDS[text] = value
    return value


# A bucket bound's text -> one float shared by every series with that bound: bucket roles
# hold it for as long as their series live (24 bytes each otherwise).
_BOUNDS: dict[str, float] = {}


def classify(series: Series, preset: schema.Preset,
             group: Callable[[str, str], Any] = lambda e, m: (e, m),
             job_group: Callable[[str], Any] = lambda j: j) -> tuple[Any, ...] | None:
    """The series' role in the schema, or None when it is not stored.

    Latency roles carry ``group(endpoint, method)``: the deriver passes a function that
    returns its long-lived accumulator for that endpoint, so the per-sample work later is
    a direct update, not a lookup.
    """
    name = series.name
    if name.endswith("_created"):
        return None
    if preset.latency and name.startswith(preset.latency):
        suffix = name[len(preset.latency):]
        if suffix in ("_bucket", "_count", "_sum"):
            target = group(series.label(preset.endpoint_label) or schema.ALL,
                           series.label(preset.method_label) or schema.ALL)
            status = series.label(preset.status_label) if preset.status_label else ""
            if suffix == "_bucket":
                le = _le(series)
                return None if le is None else (_LAT_BUCKET, target, status, le)
            return (_LAT_COUNT if suffix == "_count" else _LAT_SUM, target, status)
    if name.startswith(schema.JOB_HISTOGRAM):
        # Job runs: the latency roles, on a job's group, the outcome as the status.
        suffix = name[len(schema.JOB_HISTOGRAM):]
        if suffix in ("_bucket", "_count", "_sum"):
            target = job_group(series.label("job") or schema.ALL)
            outcome = series.label("outcome")
            if suffix == "_bucket":
                le = _le(series)
                return None if le is None else (_LAT_BUCKET, target, outcome, le)
            return (_LAT_COUNT if suffix == "_count" else _LAT_SUM, target, outcome)
    if preset.requests and name == preset.requests:
        target = group(series.label(preset.endpoint_label) or schema.ALL,
                       series.label(preset.method_label) or schema.ALL)
        return (_REQ_COUNT, target, series.label(preset.requests_status_label or "status"))
    if name == schema.START_TIME:
        return (_START,)
    gauge = schema.GAUGES.get(name)
    if gauge is not None:
        measurement, field_name, mapping = gauge
        return (_GAUGE, measurement, schema.tags_of(series, mapping), field_name,
                schema.GAUGE_SCALES.get(name, 1.0))
    cpu = schema.CPU_COUNTERS.get(name)
    if cpu is not None:
        measurement, field_name, mapping, cores = cpu
        return (_CPU, measurement, schema.tags_of(series, mapping), field_name, cores)
    counter = schema.COUNTERS.get(name)
    if counter is not None:
        measurement, prefix, mapping = counter
        return (_COUNTER, measurement, schema.tags_of(series, mapping), prefix)
    for base, (measurement, prefix, mapping) in schema.HISTOGRAMS.items():
        if name.startswith(base) and name[len(base):] in ("_bucket", "_count", "_sum"):
            tags = schema.tags_of(series, mapping)
            suffix = name[len(base):]
            if suffix == "_bucket":
                le = _le(series)
                return None if le is None else (_HIST_BUCKET, measurement, tags, prefix, le)
            kind = _HIST_COUNT if suffix == "_count" else _HIST_SUM
            return (kind, measurement, tags, prefix)
    return None


def sort_samples(samples: list[tuple[Series, float]], roles: dict[Series, tuple[Any, ...] | None],
                 classify: Callable[[Series], tuple[Any, ...] | None],
                 ) -> tuple[dict[Series, float], list[tuple[tuple[Any, ...], float]],
                            float | None, int]:
    """Each sample by its role (``roles``, filled by ``classify`` for new series): the
    cumulative ones by series, the gauges, the start time, and how many were not
    cumulative. (The compiled core's ``sort_samples`` is checked against this.)"""
    gauges: list[tuple[tuple[Any, ...], float]] = []
    cumulative: dict[Series, float] = {}
    start_time = None
    others = 0  # samples that are not counters (few: counting them is cheaper)
    for series, value in samples:
        try:
            role = roles[series]
        except KeyError:
            role = roles[series] = classify(series)
        if role is None:
            others += 1
            continue
        kind = role[0]
        if kind >= _CUMULATIVE_FROM:
            cumulative[series] = value
        elif kind == _GAUGE:
            gauges.append((role, value))
            others += 1
        else:
            start_time = value
            others += 1
    return cumulative, gauges, start_time, others


class _Latency:
    """Per-interval sums for one endpoint and method (or one other histogram). Long-lived:
    ``reset`` at each scrape; tag dicts are built once and reused."""

    __slots__ = ("buckets", "total", "count", "errors", "client_errors", "by_status",
                 "tags", "status_tags", "key", "refused")

    def __init__(self, tags: dict[str, str] | None = None) -> None:
        self.tags = tags or {}
        self.key = endpoint_key(self.tags)  # its name in threshold states
        self.status_tags: dict[str, dict[str, str]] = {}
        self.reset()

    def reset(self) -> None:
        self.buckets: dict[float, float] = {}
        self.total = 0.0      # seconds
        self.count = 0.0
        self.errors = 0.0     # 5xx
        self.client_errors = 0.0  # 4xx
        self.by_status: dict[str, float] = {}
        self.refused = ""  # why this interval's buckets were refused, if they were

    def status_tag(self, status: str) -> dict[str, str]:
        tags = self.status_tags.get(status)
        if tags is None:
            tags = self.status_tags[status] = {**self.tags, "status": status}
        return tags


def percentile_fields(buckets: dict[float, float], prefix: str = "") -> dict[str, float]:
    """p50/p90/p95/p99 in ms from (bound -> count) buckets; missing where undefined."""
    ordered = normalize_map(buckets)
    out = {}
    for name, q in schema.PERCENTILES:
        value = quantile(q, ordered)
        if value is not None and not math.isinf(value):
            out[prefix + name] = value * 1000.0
    return out


@dataclass(frozen=True, slots=True)
class Derived:
    """What one scrape gives (``TargetDeriver.derive_all``)."""

    points: list[Point]
    seconds: float | None  # the interval its counts cover; None: a baseline, no counts
    warning: str  # what was refused or dropped, for the target's status ("" if nothing)
    increments: Increments | None  # what it adds to the threshold windows


# The kinds of a steady page's lines, as the compiled steady scan reads them.
STEADY_SKIP, STEADY_BUCKET, STEADY_COUNTER, STEADY_GAUGE, STEADY_START = range(5)


@dataclass(frozen=True, slots=True)
class SteadyLayout:
    """How a page of the same series in the same order as the one just derived derives,
    line by line (``TargetDeriver.arm``): each line's kind, its counter's last value (the
    start time's, for the start time), its latency bucket's slot and its role. ``groups``
    holds each latency group with its bounds (bound -> 0.0, in the order they come on the
    page); the slots are numbered group after group, each group's in that order. ``last``
    follows the scrapes."""

    series: list[Series]
    kinds: bytes
    last: array[float]
    slots: array[int]
    roles: list[tuple[Any, ...] | None]
    groups: list[tuple[_Latency, dict[float, float]]]

    def counters(self) -> dict[Series, float]:
        """The counters' last values, by series (the tracker's state)."""
        counted = (STEADY_BUCKET, STEADY_COUNTER)
        return {series: value for series, value, kind in zip(
            self.series, self.last, self.kinds, strict=True) if kind in counted}


# (rest, gauges) of a steady page, or None when the page is not one
SteadyScan = Callable[[], tuple[list[tuple[Any, float]], list[tuple[Any, float]]] | None]


@dataclass(frozen=True, slots=True)
class _Counted:
    points: list[Point]
    counts: dict[str, Counts]  # per endpoint key
    total: Counts | None  # every endpoint together
    jobs: dict[str, Counts]  # per job
    warning: str


class TargetDeriver:
    """Derived points for one target, scrape after scrape."""

    def __init__(self, service: str, preset: schema.Preset | str = "promflux",
                 max_series: int = 200_000, latency_limit_s: float = 0.5,
                 labels: dict[str, str] | None = None) -> None:
        self.service = service
        # The target's own tags on every point (e.g. instance), after the service.
        self.base_tags = {"service": service, **(labels or {})}
        self.latency_limit_s = latency_limit_s  # requests_within_limit counts up to it
        self.preset = schema.PRESETS[preset] if isinstance(preset, str) else preset
        self.cache = SeriesCache()
        self.tracker: CounterTracker[Series] = CounterTracker(max_absent=max_series)
        self._roles: dict[Series, tuple[Any, ...] | None] = {}
        self._groups: dict[tuple[str, str], _Latency] = {}
        self._jobs: dict[str, _Latency] = {}
        self.start_time: float | None = None  # the target's process start time
        self._cores: dict[str, float] = {}  # cores gauges, by field, as last seen
        self.last_wall: float | None = None  # when the counter state was last updated
        self.duplicates = 0  # repeated series dropped from answers, as Prometheus does
        self.refused_histograms = 0  # interval buckets refused as not cumulative
        self.steady: SteadyLayout | None = None  # the last page's, when armed
        self._new_series = False  # the last page had series not seen before
        self._steady_at: float | None = None  # the tracker's time the layout follows

    def _job_group(self, job: str) -> _Latency:
        group = self._jobs.get(job)
        if group is None:
            group = self._jobs[job] = _Latency({**self.base_tags, "job": job})
        return group

    def _group(self, endpoint: str, method: str) -> _Latency:
        group = self._groups.get((endpoint, method))
        if group is None:
            group = self._groups[endpoint, method] = _Latency(
                {**self.base_tags, "endpoint": endpoint, "method": method})
        return group

    @property
    def restarts(self) -> int:
        """Target restarts seen (counters that went down or a new start time)."""
        return self.tracker.restarts

    def derive(self, scrape: Scrape, timestamp: float,
               monotonic: float | None = None, count: bool = True) -> list[Point]:
        """The points of ``derive_all`` alone."""
        return self.derive_all(scrape, timestamp, monotonic, count).points

    def derive_all(self, scrape: Scrape, timestamp: float, monotonic: float | None = None,
                   count: bool = True, target: str = "") -> Derived:
        """Everything one scrape taken at ``timestamp`` (wall-clock seconds, the points'
        time) gives: its points, the interval they cover, what was refused, and what it
        adds to ``target``'s threshold windows. Intervals come from ``monotonic`` when
        given, so a clock step never shrinks, stretches or reverses one. ``count=False``:
        the interval's increases are stored elsewhere (an HA twin): this scrape is a new
        baseline, its gauges the only points."""
        roles = self._roles
        warning = ""
        self.steady = None  # (its values are the tracker's again from here)
        known = len(roles)
        if compiled is not None:
            cumulative, gauges, start_time, others = compiled.sort_samples(
                scrape.samples, roles, self._classify, _CUMULATIVE_FROM, _GAUGE)
        else:
            cumulative, gauges, start_time, others = sort_samples(
                scrape.samples, roles, self._classify)
        self._new_series = len(roles) > known
        if len(scrape.samples) - others != len(cumulative):  # a series repeated
            cumulative, warning = self._first_values(scrape)
        if len(roles) > 2 * len(scrape.samples) + 1024:
            self._roles = {s: roles[s] for s, _ in scrape.samples if s in roles}
            kept = {id(r[1]): r[1] for r in self._roles.values()
                    if r and _LAT_BUCKET <= r[0] <= _REQ_COUNT}.values()
            self._groups = {(g.tags["endpoint"], g.tags["method"]): g
                            for g in kept if "job" not in g.tags}
            self._jobs = {g.tags["job"]: g for g in kept if "job" in g.tags}
        restarted = (start_time is not None and self.start_time is not None
                     and start_time != self.start_time)
        if start_time is not None:
            self.start_time = start_time
        ts = int(timestamp * 1000)
        points = self._gauge_points(gauges, ts)
        increases, seconds = self.tracker.update(
            timestamp if monotonic is None else monotonic, cumulative, restarted, give=True)
        self.last_wall = timestamp
        if seconds is None or seconds <= 0 or not count:
            return Derived(points, None, warning, None)  # the first scrape is a baseline
        return _derived(points, seconds, self._counter_points(increases, seconds, ts),
                        warning, target)

    def derive_steady(self, scan: SteadyScan, timestamp: float, monotonic: float,
                      target: str = "") -> Derived | None:
        """``derive_all`` of a counted scrape whose page has the lines of the one before in
        the same order (see ``arm``). ``scan`` is the compiled pass over the page, run here
        once the groups are reset: it adds the latency buckets into them and gives the
        other counters' increases and the gauges; None when the page is not steady (then
        nothing has changed, and this returns None)."""
        layout, previous = self.steady, self.tracker.time
        if (layout is None or previous is None or monotonic <= previous
                or previous != self._steady_at):
            return None  # (not laid out, or the tracker was set since: a restored state)
        self._reset_groups()
        scanned = scan()
        if scanned is None:
            return None
        rest, gauges = scanned
        ts = int(timestamp * 1000)
        points = self._gauge_points(gauges, ts)
        seconds = monotonic - previous
        self.tracker.went_on(monotonic, layout.counters)
        self._steady_at = monotonic
        self.last_wall = timestamp
        return _derived(points, seconds, self._rows(rest, seconds, ts), "", target)

    def arm(self, samples: list[tuple[Series, float]]) -> bool:
        """After ``derive_all`` of ``samples``: lay them out for ``derive_steady`` of the
        pages to come with the same lines. False when such pages would not derive the
        usual way alone: a series repeated, a counter whose value was not kept (NaN); or
        when they had series not seen before (a page that churns is not laid out each
        time: the next without new series is)."""
        if (self._new_series or self.tracker.time is None
                or len({s for s, _ in samples}) != len(samples)):
            return False
        last = self.tracker.last_values()
        self.steady = steady_layout(samples, self._roles, last)
        self._steady_at = self.tracker.time
        return self.steady is not None

    def _classify(self, series: Series) -> tuple[Any, ...] | None:
        return classify(series, self.preset, self._group, self._job_group)

    def _first_values(self, scrape: Scrape) -> tuple[dict[Series, float], str]:
        """The counters of an answer that repeats series, as Prometheus takes them: the
        first sample of each series; the repeats are dropped and counted."""
        roles = self._roles
        first: dict[Series, float] = {}
        repeats = 0
        for series, value in scrape.samples:
            role = roles[series]
            if role is not None and role[0] >= _CUMULATIVE_FROM:
                if series in first:
                    repeats += 1
                else:
                    first[series] = value
        self.duplicates += repeats
        return first, f"{repeats} repeated series dropped (the first sample of each kept)"

    def _tags(self, extra: Iterable[tuple[str, str]]) -> dict[str, str]:
        tags = dict(self.base_tags)
        tags.update(extra)
        return tags

    def _gauge_points(self, gauges: list[tuple[tuple[Any, ...], float]], ts: int) -> list[Point]:
        for role, value in gauges:  # the cores a CPU counter is a share of
            if role[3] in _CORE_FIELDS:
                self._cores[role[3]] = value
        return _gauge_points(gauges, ts, self._tags)

    def _reset_groups(self) -> None:
        for group in (*self._groups.values(), *self._jobs.values()):
            group.reset()

    def _counter_points(self, increases: dict[Series, float], seconds: float,
                        ts: int) -> _Counted:
        roles = self._roles
        rest: list[tuple[tuple[Any, ...] | None, float]]
        self._reset_groups()
        if compiled is not None:  # (the latency buckets, most samples, added in C)
            rest = compiled.add_buckets(increases, roles, _LAT_BUCKET, "buckets")
        else:
            rest = [(roles.get(series), increase) for series, increase in increases.items()]
        return self._rows(rest, seconds, ts)

    def _rows(self, rest: list[tuple[tuple[Any, ...] | None, float]], seconds: float,
              ts: int) -> _Counted:
        """The points of an interval, its latency buckets added into their groups and
        ``rest`` the other counters' increases."""
        groups = list(self._groups.values())
        counters, cpu_rows, histograms = _add_rest(rest, self._cores, seconds)
        counts: dict[str, Counts] = {}
        points, total = latency_points(
            groups, self._tags((("endpoint", schema.ALL), ("method", schema.ALL))), seconds,
            ts, self.latency_limit_s, counts)
        job_rows, jobs = job_points(self._jobs.values(), seconds, ts)
        points += job_rows
        warning = ""
        refused = [g for g in (*groups, *self._jobs.values()) if g.refused]
        if refused:
            self.refused_histograms += len(refused)
            warning = (f"{len(refused)} histogram(s) refused for this interval, "
                       f"e.g. {refused[0].tags.get('job') or refused[0].key}: "
                       f"{refused[0].refused}")
        for (measurement, tags), fields in cpu_rows.items():
            # Same series and time as the gauges' point: InfluxDB merges the fields.
            points.append((measurement, self._tags(tags), fields, ts))
        points += _other_points(counters, histograms, seconds, ts, self._tags)
        return _Counted(points, counts, total, jobs, warning)


_Rows = dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, float]]
_Histograms = dict[tuple[str, tuple[tuple[str, str], ...], str], "_Latency"]


def _add_rest(rest: list[tuple[tuple[Any, ...] | None, float]], cores: dict[str, float],
              seconds: float) -> tuple[_Rows, _Rows, _Histograms]:
    """Each increase but the latency buckets' into its group, counter row, CPU row or
    histogram (``cores``: the cores gauges a CPU counter is a share of)."""
    counters: _Rows = {}
    cpu_rows: _Rows = {}
    histograms: _Histograms = {}
    for role, increase in rest:
        if role is None:
            continue  # not stored (the tracker's increases are finite, never negative)
        kind = role[0]
        if kind == _LAT_BUCKET:
            buckets = role[1].buckets
            le = role[3]
            buckets[le] = buckets.get(le, 0.0) + increase
        elif kind == _LAT_COUNT:
            group = role[1]
            group.count += increase
            status = role[2]
            if status:
                group.by_status[status] = group.by_status.get(status, 0.0) + increase
        elif kind == _LAT_SUM:
            role[1].total += increase
        elif kind == _REQ_COUNT:
            by_status = role[1].by_status
            by_status[role[2]] = by_status.get(role[2], 0.0) + increase
        elif kind == _COUNTER:
            row = counters.setdefault((role[1], role[2]), {})
            row[role[3]] = row.get(role[3], 0.0) + increase
        elif kind == _CPU:
            share = cores.get(role[4]) or 1.0
            cpu_rows.setdefault((role[1], role[2]), {})[role[3]] = (
                100.0 * increase / seconds / share)
        else:  # other histograms
            key = (role[1], role[2], role[3])
            hist = histograms.get(key) or histograms.setdefault(key, _Latency())
            if kind == _HIST_BUCKET:
                hist.buckets[role[4]] = hist.buckets.get(role[4], 0.0) + increase
            elif kind == _HIST_COUNT:
                hist.count += increase
            else:
                hist.total += increase
    return counters, cpu_rows, histograms


def steady_layout(samples: list[tuple[Series, float]],
                  roles: dict[Series, tuple[Any, ...] | None],
                  last: dict[Series, float]) -> SteadyLayout | None:
    """The layout of a page of ``samples`` (each series with its role, the counters with
    their last values); None when a series or a counter's value is missing."""
    kinds, values = bytearray(), array("d")
    roles_of: list[tuple[Any, ...] | None] = []
    bounds: dict[_Latency, dict[float, float]] = {}  # per group (by identity), in page order
    line_bounds: list[tuple[_Latency, float] | None] = []  # a bucket line's (group, bound)
    for series, value in samples:
        if series not in roles:
            return None
        role = roles[series]
        kind, old, bound = STEADY_SKIP, 0.0, None
        if role is not None and role[0] >= _CUMULATIVE_FROM:
            old = last.get(series)  # type: ignore[assignment]
            if type(old) is not float:
                return None
            kind = STEADY_COUNTER
            if role[0] == _LAT_BUCKET:
                kind, bound = STEADY_BUCKET, (role[1], role[3])
                bounds.setdefault(role[1], {})[role[3]] = 0.0
        elif role is not None:
            kind = STEADY_GAUGE if role[0] == _GAUGE else STEADY_START
            old = value if kind == STEADY_START else 0.0
        kinds.append(kind)
        values.append(old)
        roles_of.append(role)
        line_bounds.append(bound)
    slot_of = {key: slot for slot, key in enumerate(  # (numbered group after group)
        (group, le) for group, template in bounds.items() for le in template)}
    slots = array("i", (-1 if bound is None else slot_of[bound] for bound in line_bounds))
    return SteadyLayout([s for s, _ in samples], bytes(kinds), values, slots, roles_of,
                        list(bounds.items()))


def _derived(points: list[Point], seconds: float, counted: _Counted, warning: str,
             target: str) -> Derived:
    points += counted.points
    # (a group "_all" counts in the service, never alone)
    return Derived(points, seconds, counted.warning or warning, Increments(
        target, seconds, counted.counts, *resource_figures(points), total=counted.total,
        jobs=counted.jobs, job_success=job_successes(points)))


def _bucket_points(group: _Latency, measurement: str, ts: int, points: list[Point],
                   wide_buckets: dict[float, float]) -> None:
    """A group's bucket row, one field per bucket (and its buckets added to
    ``wide_buckets``). Buckets that are not cumulative are refused for the interval: no
    row and no percentiles (never a negative count); ``group.refused`` says why."""
    try:
        row = bucket_fields.fields(group.buckets, wide_buckets)
    except bucket_fields.NotCumulative as error:
        group.refused = str(error)
        group.buckets = {}
        return
    if row:
        points.append((measurement, group.tags, row, ts))


def latency_points(groups: list[_Latency], wide_tags: dict[str, str], seconds: float, ts: int,
                   limit_s: float, counts: dict[str, Counts]) -> tuple[list[Point],
                                                                    Counts | None]:
    """Request points of one interval; fills ``counts`` (per endpoint key, for the
    threshold windows) and returns the service's total counts with them."""
    points: list[Point] = []
    service_wide = _Latency(wide_tags)
    to_minute = 60.0 / seconds

    def one(group: _Latency) -> bool:
        return _latency_group(group, service_wide, to_minute, seconds, ts, limit_s, points,
                              counts)

    if compiled is not None:  # (each group as ``one`` does it, or by ``one`` itself)
        seen = compiled.latency_groups(groups, points, service_wide, to_minute, seconds, ts,
                                       limit_s, counts, one, _LATENCY_PARTS)
    else:
        seen = False
        for group in groups:
            seen = one(group) or seen
    if not seen:
        return points, None
    points.append(_performance_row(service_wide, seconds, ts, limit_s))
    return points, Counts(sum((c.requests for c in counts.values()), 0.0), service_wide.errors,
                          service_wide.client_errors, service_wide.buckets)


def _latency_group(group: _Latency, service_wide: _Latency, to_minute: float, seconds: float,
                   ts: int, limit_s: float, points: list[Point],
                   counts: dict[str, Counts]) -> bool:
    """One endpoint's points of an interval, its figures added to ``service_wide`` and
    its counts put in ``counts``; False when the scrape had no series of it."""
    if not (group.buckets or group.by_status or group.count):
        return False
    wide_status = service_wide.by_status
    for status, count in group.by_status.items():
        cls = status[:1]
        if cls == "5":
            group.errors += count
        elif cls == "4":
            group.client_errors += count
        if count > 0:
            points.append((schema.STATUS_CODES, group.status_tag(status),
                           {"requests": count, "requests_per_minute": count * to_minute}, ts))
        wide_status[status] = wide_status.get(status, 0.0) + count
    _bucket_points(group, schema.LATENCY_BUCKETS, ts, points, service_wide.buckets)
    service_wide.count += group.count
    service_wide.total += group.total
    service_wide.errors += group.errors
    service_wide.client_errors += group.client_errors
    row = _performance_row(group, seconds, ts, limit_s)
    points.append(row)
    requests = row[2]["requests"]
    # An idle endpoint adds nothing to the windows: it gets no counts (most endpoints of a
    # page are idle between two scrapes; adding their zeros was most of the windows' work).
    if requests or group.errors or group.client_errors or any(group.buckets.values()):
        # The group's bucket dict is replaced at the next reset: shared, not copied.
        counts[group.key] = Counts(requests, group.errors,  # type: ignore[arg-type]
                                   group.client_errors, group.buckets)
    return True


def job_points(groups: Iterable[_Latency], seconds: float,
               ts: int) -> tuple[list[Point], dict[str, Counts]]:
    """Job points of one interval, per job kind: runs, failures (outcome "failure"),
    failure percent, duration mean and percentiles, and the duration buckets; and each
    job's counts for the threshold windows (failures as the errors)."""
    points: list[Point] = []
    counts: dict[str, Counts] = {}
    for group in groups:
        if not (group.buckets or group.by_status or group.count):
            continue
        runs = (group.count or group.buckets.get(math.inf, 0.0)
                or sum(group.by_status.values()))
        failures = group.by_status.get("failure", 0.0)
        _bucket_points(group, schema.JOB_BUCKETS, ts, points, {})
        fields: dict[str, float] = {
            "runs": runs, "runs_per_minute": per_minute(runs, seconds) or 0.0,
            "interval_s": seconds,
            "failures": failures, "cancelled": group.by_status.get("cancelled", 0.0),
            "duration_sum_ms": group.total * 1000.0}
        if runs > 0:
            fields["failure_percent"] = 100.0 * failures / runs
            fields["duration_mean_ms"] = group.total / runs * 1000.0
            fields.update(percentile_fields(group.buckets, "duration_"))
        points.append((schema.JOBS, group.tags, fields, ts))
        counts[group.tags["job"]] = Counts(runs, failures, 0.0, group.buckets)
    return points, counts


def _other_points(counters: dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, float]],
                  histograms: dict[tuple[str, tuple[tuple[str, str], ...], str], _Latency],
                  seconds: float, ts: int,
                  tags_of: Callable[[Iterable[tuple[str, str]]], dict[str, str]]) -> list[Point]:
    """Points of the counters and histograms outside the request latency."""
    points: list[Point] = []
    for (measurement, tags), row in counters.items():
        fields = {"interval_s": seconds}
        for prefix, increase in row.items():
            fields[prefix] = increase
            fields[prefix + "_per_minute"] = per_minute(increase, seconds) or 0.0
        points.append((measurement, tags_of(tags), fields, ts))
    for (measurement, tags, prefix), hist in histograms.items():
        fields = {f"{prefix}_count": hist.count,
                  f"{prefix}_per_minute": per_minute(hist.count, seconds) or 0.0,
                  "interval_s": seconds}
        if hist.count > 0:
            fields[f"{prefix}_mean_ms"] = hist.total / hist.count * 1000.0
            if bucket_fields.is_cumulative(hist.buckets):
                fields.update(percentile_fields(hist.buckets, prefix + "_"))
        points.append((measurement, tags_of(tags), fields, ts))
    return points


def _gauge_points(gauges: list[tuple[tuple[Any, ...], float]], ts: int,
                  tags_of: Callable[[Iterable[tuple[str, str]]], dict[str, str]]) -> list[Point]:
    rows: dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, float]] = {}
    for (_, measurement, tags, field_name, scale), value in gauges:
        if math.isnan(value) or math.isinf(value):
            continue
        rows.setdefault((measurement, tags), {})[field_name] = value * scale
        if field_name == "last_success":  # a job's age, as of this scrape
            rows[measurement, tags]["seconds_since_success"] = max(0.0, ts / 1000.0 - value)
    return [(m, tags_of(tags), fields, ts) for (m, tags), fields in rows.items()]


def within(buckets: dict[float, float], limit_s: float) -> float:
    """Requests at or under ``limit_s``: the cumulative bucket at that bound (exact when
    it is a bound; else the largest bound below it, which never overstates)."""
    count = buckets.get(limit_s)
    if count is not None:
        return count
    below = [b for b in buckets if b <= limit_s]
    return buckets[max(below)] if below else 0.0


def _performance_row(group: _Latency, seconds: float, ts: int, limit_s: float) -> Point:
    count = (group.count or group.buckets.get(math.inf, 0.0)
             or sum(group.by_status.values()))
    fields = None if compiled is None else compiled.performance_fields(
        count, group.errors, group.client_errors, group.total, seconds, group.buckets,
        limit_s, EPSILON, schema.PERCENTILES)  # (None where a figure is not a float)
    if fields is None:
        fields = performance_fields(group, count, seconds, limit_s)
    return (schema.PERFORMANCE, group.tags, fields, ts)


def performance_fields(group: _Latency, count: float, seconds: float,
                       limit_s: float) -> dict[str, float]:
    """The fields of a group's performance row (the compiled core's are checked against
    these)."""
    fields: dict[str, float] = {
        "requests": count,
        "requests_per_minute": per_minute(count, seconds) or 0.0,
        "errors": group.errors,
        "errors_per_minute": per_minute(group.errors, seconds) or 0.0,
        "client_errors": group.client_errors,
        "interval_s": seconds,  # what the rows of a Grafana bin cover, for its rates
    }
    if count > 0:
        fields["response_time_ms"] = group.total / count * 1000.0
        fields["latency_sum_ms"] = group.total * 1000.0
        fields["error_rate_percent"] = error_rate_percent(group.errors, count) or 0.0
        fields["client_error_rate_percent"] = (
            error_rate_percent(group.client_errors, count) or 0.0)
        if group.buckets:
            # Additive and exact: the share within the p95 limit over any range and group
            # is sum(requests_within_limit) / sum(requests); >= 95 % means p95 <= limit.
            fields["requests_within_limit"] = within(group.buckets, limit_s)
        fields.update(percentile_fields(group.buckets))
    return fields


# What the compiled latency_groups takes from here, in its order.
_LATENCY_PARTS = (schema.STATUS_CODES, schema.LATENCY_BUCKETS, schema.PERFORMANCE,
                  bucket_fields.TOLERANCE, bucket_fields.NAMES, bucket_fields.field_name,
                  EPSILON, schema.PERCENTILES, Counts, _bucket_points, _performance_row)
