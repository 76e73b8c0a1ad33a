"""Sliding windows of counts per service and endpoint, for judging figures. Pure, no I/O.

Each scrape adds its increments (requests, errors, cumulative bucket counts, CPU seconds)
to running sums; increments older than the window are subtracted again. A window's p95,
error rate and requests per minute are therefore exact figures of the summed counts over
the window, recomputed at every scrape, never an average of per-scrape figures. Sums of
whole request counts stay exact in floating point.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..model import Point
from ..native import compiled
from . import schema
from .quantile import normalize_map, quantile


class PackedCounts:
    """A closed window entry's counts by key (endpoint, job) in one array: per key its
    requests, errors and client errors, then its bucket counts. The layout (each key and
    its bounds) is one tuple shared by every entry laid out alike. A service's threshold
    windows hold about 38 entries per target, read again only when they leave the window;
    packed, a key costs 1 to 8 bytes a figure in each instead of a few hundred.

    The array takes the narrowest type that holds every figure exactly (see ``narrowest``):
    a slot's counts are whole and small, so mostly one or two bytes each."""

    __slots__ = ("layout", "values")

    def __init__(self, counts: dict[str, Counts]) -> None:
        layout = tuple((key, tuple(c.buckets)) for key, c in counts.items())
        shared = _LAYOUTS.get(layout)
        if shared is None:
            if len(_LAYOUTS) >= 1_000:  # (bounded, whatever the endpoints)
                _LAYOUTS.clear()
            shared = _LAYOUTS[layout] = layout
        self.layout = shared
        values: list[float] = []
        for c in counts.values():
            values += (c.requests, c.errors, c.client_errors)
            values += c.buckets.values()
        self.values = narrowest(values)

    def items(self) -> Iterator[tuple[str, Counts]]:
        """(endpoint, its counts), as they were packed (as floats again)."""
        values, at = self.values, 0
        if values.typecode != "d":
            values = _widened(values)
        for key, bounds in self.layout:
            end = at + 3 + len(bounds)
            yield key, Counts(values[at], values[at + 1], values[at + 2],
                              dict(zip(bounds, values[at + 3:end], strict=True)))
            at = end


_WHOLE = (("B", 255), ("H", 65_535), ("I", 4_294_967_295))


def narrowest(values: list[float]) -> array[Any]:
    """``values`` in the narrowest array that gives each back exactly: unsigned bytes,
    shorts or ints when all are whole and in range, else doubles (negative, fractional,
    huge, NaN or infinite figures)."""
    made = None if compiled is None else compiled.narrow(values)
    if made is not None:  # (the same array, its bytes made in C)
        packed = array(made[0])
        packed.frombytes(made[1])
        return packed
    code = None
    if values and min(values) >= 0.0:
        top = max(values)  # (NaN fits no type: doubles)
        code = next((c for c, limit in _WHOLE if top <= limit), None)
    if code is not None:
        try:
            whole = array(code, map(int, values))
        except ValueError:  # a NaN among them
            pass
        else:
            if whole.tolist() == values:  # every figure whole (no fraction lost)
                return whole
    return array("d", values)


def _widened(values: array[Any]) -> array[float]:
    """A packed array's figures as doubles."""
    raw = None if compiled is None else compiled.widen(values)
    if raw is None:
        return array("d", values)
    wide = array("d")
    wide.frombytes(raw)
    return wide


_LAYOUTS: dict[tuple[tuple[str, tuple[float, ...]], ...],
               tuple[tuple[str, tuple[float, ...]], ...]] = {}


class Counts:
    """Requests, errors and cumulative latency buckets (seconds -> count) over some time."""

    __slots__ = ("requests", "errors", "client_errors", "buckets", "_ordered")

    def __init__(self, requests: float = 0.0, errors: float = 0.0, client_errors: float = 0.0,
                 buckets: dict[float, float] | None = None) -> None:
        self.requests = requests
        self.errors = errors
        self.client_errors = client_errors
        self.buckets: dict[float, float] = {} if buckets is None else buckets
        self._ordered: list[tuple[float, float]] | None = None

    def forget_order(self) -> None:
        """Drop the sorted buckets kept for percentiles (remade when next read)."""
        self._ordered = None

    def ordered(self) -> list[tuple[float, float]]:
        """The buckets sorted and monotonic; kept until the counts change (several
        figures read them per scrape)."""
        if self._ordered is None:
            self._ordered = normalize_map(self.buckets)
        return self._ordered

    def add(self, other: Counts, sign: float = 1.0) -> None:
        self._ordered = None
        self.requests += sign * other.requests
        self.errors += sign * other.errors
        self.client_errors += sign * other.client_errors
        buckets = self.buckets
        if compiled is not None and compiled.add_scaled(buckets, other.buckets, sign):
            return
        for le, count in other.buckets.items():
            buckets[le] = buckets.get(le, 0.0) + sign * count

    @property
    def empty(self) -> bool:
        return self.requests <= 0.0 and not any(c > 0.0 for c in self.buckets.values())

    def percentile_ms(self, q: float) -> float | None:
        value = quantile(q, self.ordered())
        return None if value is None or math.isinf(value) else value * 1000.0

    def slower_than(self, limit_s: float) -> float:
        """Requests slower than ``limit_s``, interpolated inside its bucket the way the
        percentile is (so "p95 > L" and "over 5 % slower than L" agree)."""
        below_le, below = 0.0, 0.0
        for le, count in self.ordered():
            if le >= limit_s:
                if math.isinf(le):
                    within = below
                else:
                    within = below + (count - below) * (limit_s - below_le) / (le - below_le)
                return max(0.0, self.requests - within)
            below_le, below = le, count
        return max(0.0, self.requests - below)

    def error_rate_percent(self) -> float | None:
        return 100.0 * self.errors / self.requests if self.requests > 0 else None

    def client_error_rate_percent(self) -> float | None:
        return 100.0 * self.client_errors / self.requests if self.requests > 0 else None


@dataclass
class Increments:
    """What one scrape of one target adds: per endpoint ("GET /x"), and resources."""

    target: str
    seconds: float
    endpoints: dict[str, Counts] = field(default_factory=dict)
    cpu_percent: float | None = None
    memory_percent: float | None = None
    disk_percent: float | None = None
    total: Counts | None = None  # every endpoint summed (computed when not given)
    jobs: dict[str, Counts] = field(default_factory=dict)  # runs and failures, per job
    job_success: dict[str, float] = field(default_factory=dict)  # job -> last success
    # Once the entry closed: its endpoints, jobs and total, packed (those fields emptied).
    packed: tuple[PackedCounts, PackedCounts, PackedCounts] | None = None

    def service(self) -> Counts:
        if self.total is None:
            self.total = Counts()
            for counts in self.endpoints.values():
                self.total.add(counts)
        return self.total


def endpoint_key(tags: Mapping[str, str]) -> str:
    """The state key of an endpoint: "GET /items/{id}", or "_all" for the service."""
    endpoint = tags.get("endpoint", schema.ALL)
    method = tags.get("method", schema.ALL)
    if endpoint == schema.ALL or not method or method == schema.ALL:
        return str(endpoint)
    return f"{method} {endpoint}"


def resource_figures(points: Iterable[Point]) -> tuple[float | None, float | None,
                                                      float | None]:
    """CPU and memory percent (the target's processes summed) and the fullest disk."""
    cpu = memory = disk = None
    for measurement, _, fields, _ in points:
        if measurement == schema.RESOURCES:
            value = fields.get("cpu_percent")
            if isinstance(value, float):
                cpu = (cpu or 0.0) + value
            value = fields.get("memory_percent")
            if isinstance(value, float):
                memory = (memory or 0.0) + value
        elif measurement == schema.DISK:
            value = fields.get("used_percent")
            if isinstance(value, float):
                disk = max(disk or 0.0, value)
    return cpu, memory, disk


def job_successes(points: Iterable[Point]) -> dict[str, float]:
    """Job -> the time of its last success (Unix seconds), as the target reported it."""
    out = {}
    for measurement, tags, fields, _ in points:
        if measurement == schema.JOBS:
            value = fields.get("last_success")
            if isinstance(value, float):
                out[tags.get("job", "")] = value
    return out


SLOTS = 15  # a window keeps at most about this many entries per target


@dataclass
class _Entry:
    at: float  # its newest scrape
    opened: float  # its first scrape
    increments: Increments


def add_counts(into: dict[str, Counts], more: Iterable[tuple[str, Counts]],
               sign: float) -> float:
    """Add (or with sign -1 take away) counts by key; keys left empty go. Returns the
    requests added. (By the compiled core when it runs: every endpoint, every scrape.)"""
    if compiled is not None:
        added: float = compiled.add_counts(into, more, sign, Counts)
        if added is not NotImplemented:
            return added
    requests = 0.0
    for key, counts in more:
        mine = into.get(key)
        if mine is None:
            mine = into[key] = Counts()
        mine.add(counts, sign)
        requests += counts.requests
        if sign < 0 and mine.empty:
            del into[key]  # nothing left of it in the window
    return requests


def pack(inc: Increments) -> None:
    """Pack a closed entry's counts (the service total made first, from the endpoints)."""
    if inc.packed is None:
        inc.packed = (PackedCounts(inc.endpoints), PackedCounts(inc.jobs),
                      PackedCounts({schema.ALL: inc.service()}))
        inc.endpoints, inc.jobs, inc.total = {}, {}, None


def _unpacked(inc: Increments) -> tuple[Iterable[tuple[str, Counts]],
                                        Iterable[tuple[str, Counts]], Counts]:
    """An entry's counts by endpoint and by job, and its total, packed or not."""
    if inc.packed is None:
        return inc.endpoints.items(), inc.jobs.items(), inc.service()
    endpoints, jobs, total = inc.packed
    return endpoints.items(), jobs.items(), next(total.items())[1]


def merge(into: Increments, more: Increments) -> None:
    """Add ``more`` (a later scrape of the same target) into ``into``."""
    total = into.service()  # before the endpoints change
    add_counts(into.endpoints, more.endpoints.items(), 1.0)
    add_counts(into.jobs, more.jobs.items(), 1.0)
    total.add(more.service())
    if more.cpu_percent is not None:  # kept as a time-weighted mean
        weighted = (into.cpu_percent or 0.0) * into.seconds + more.cpu_percent * more.seconds
        into.cpu_percent = weighted / (into.seconds + more.seconds)
    into.seconds += more.seconds


class Running:
    """Sums over the last ``length`` seconds of one service's scrapes (all its targets)."""

    def __init__(self, length: float) -> None:
        self.length = length
        self.entries: deque[_Entry] = deque()
        self.endpoints: dict[str, Counts] = {}
        self.total = Counts()                  # every endpoint together
        self.jobs: dict[str, Counts] = {}      # job runs: requests = runs, errors = failures
        self.seconds: dict[str, float] = {}    # per target: scraped time in the window
        self.requests: dict[str, float] = {}   # per target
        self.cpu: dict[str, float] = {}        # per target: percent x seconds

    def push(self, entry: _Entry) -> None:
        self._apply(entry.increments, 1.0)
        self.entries.append(entry)
        self._expire(entry.at)

    def include(self, more: Iterable[Increments], now: float) -> None:
        """``more`` were merged into the newest entries of their targets: count them too."""
        for inc in more:
            self._apply(inc, 1.0)
        self._expire(now)

    def _expire(self, now: float) -> None:
        horizon = now - self.length
        while self.entries and self.entries[0].at <= horizon:
            self._apply(self.entries.popleft().increments, -1.0)

    def _apply(self, inc: Increments, sign: float) -> None:
        target = inc.target
        self.seconds[target] = self.seconds.get(target, 0.0) + sign * inc.seconds
        endpoints, jobs, total = _unpacked(inc)
        requests = add_counts(self.endpoints, endpoints, sign)
        add_counts(self.jobs, jobs, sign)
        self.total.add(total, sign)
        self.requests[target] = self.requests.get(target, 0.0) + sign * requests
        if inc.cpu_percent is not None:
            self.cpu[target] = self.cpu.get(target, 0.0) + sign * inc.cpu_percent * inc.seconds
        if sign < 0 and self.seconds[target] <= 1e-9:
            for per_target in (self.seconds, self.requests, self.cpu):
                per_target.pop(target, None)

    def service(self) -> Counts:
        """Every endpoint summed: the service-wide counts (kept as they change)."""
        return self.total

    def requests_per_minute(self) -> float | None:
        """Summed over targets, each its requests over its own scraped time."""
        rates = [60.0 * self.requests.get(t, 0.0) / s for t, s in self.seconds.items() if s > 0]
        return sum(rates) if rates else None

    def cpu_percent(self) -> float | None:
        """The busiest target's CPU over the window (CPU seconds over elapsed seconds)."""
        values = [cpu / self.seconds[t] for t, cpu in self.cpu.items()
                  if self.seconds.get(t, 0.0) > 0]
        return max(values) if values else None


class ServiceWindow:
    """One service's windows (one per configured length) and its latest gauges.

    Scrapes less than a slot (1/SLOTS of the shortest window) after the first scrape of
    their target's newest entry are merged into it, so memory does not grow with the scrape
    rate; a window then covers between its length and its length plus one slot, and every
    figure stays exact over what it covers. Such scrapes are held, summed, until the sums
    are next read (``settle``: before judging, or when a slot opens): the sums are then
    what they would be had each been added at once, for a third of the additions at 1 s
    scrapes."""

    def __init__(self, lengths: Iterable[float]) -> None:
        self.runs = {length: Running(length) for length in sorted(set(lengths))}
        self.slot = min(self.runs) / SLOTS
        self.started: float | None = None  # the start of the first counted interval
        self.memory: dict[str, float] = {}
        self.disk: dict[str, float] = {}
        self.job_success: dict[str, float] = {}  # job -> latest success of any target
        self.job_seen: dict[str, float] = {}  # job -> when its runs were first seen
        self._open: dict[str, _Entry] = {}  # per target, the entry still taking scrapes
        self._held: dict[str, Increments] = {}  # per target, merged scrapes not yet summed
        self._last = 0.0  # when the last scrape was added

    def add(self, inc: Increments, now: float) -> bool:
        """Add one scrape; returns whether it opened an entry (a slot) of its target."""
        if self.started is None:
            self.started = now - inc.seconds
        self._last = now
        entry = self._open.get(inc.target)
        opened = entry is None or now - entry.opened >= self.slot
        if entry is not None and not opened:
            entry.at = now
            held = self._held.get(inc.target)
            if held is None:
                self._held[inc.target] = inc
            else:
                merge(held, inc)
        else:
            self.settle()
            if entry is not None:  # closed: read again only when it leaves the window
                pack(entry.increments)
            entry = self._open[inc.target] = _Entry(now, now, inc)
            for run in self.runs.values():
                run.push(entry)
        for job, at in inc.job_success.items():
            self.job_success[job] = max(at, self.job_success.get(job, at))
        for job in inc.jobs:
            self.job_seen.setdefault(job, now)
        if inc.memory_percent is not None:
            self.memory[inc.target] = inc.memory_percent
        if inc.disk_percent is not None:
            self.disk[inc.target] = inc.disk_percent
        return opened

    def settle(self) -> None:
        """The held scrapes into their entries and the sums, as of the last scrape added
        (the old entries expired then): call before reading the sums."""
        if not self._held:
            return
        for target, held in self._held.items():  # (all first: an entry may expire below)
            merge(self._open[target].increments, held)
        for run in self.runs.values():
            run.include(self._held.values(), self._last)
        self._held.clear()

    def forget_orders(self) -> None:
        """Drop the sums' sorted buckets once a scrape is judged: they are remade from the
        sums when next read, and kept they cost about a sixth of a target's memory."""
        for run in self.runs.values():
            run.total.forget_order()
            for counts in run.endpoints.values():
                counts.forget_order()

    def full(self, length: float, now: float) -> bool:
        """Whether ``length`` seconds of scrapes are in (figures are judged only then)."""
        return self.started is not None and now - self.started >= length - 1e-6

    def run(self, length: float) -> Running:
        """The sums over ``length`` seconds (``settle`` first to read them whole)."""
        found = self.runs.get(length)
        if found is None:  # a length no rule asked for at start (not expected)
            found = self.runs[length] = Running(length)
        return found
