"""Who of an HA pair stores a slot: the primary, and the standby only where the primary
did not (pure: no I/O; the peer loop feeds it the primary's answers).

Both replicas scrape every target at the same slots, but their scrapes of one slot are
milliseconds apart, so their points for it differ by the requests in between. If both
wrote, InfluxDB would keep whichever came last, and a range would add points of one
replica to points of the other: a request that fell between the twins' scrapes would be
counted twice or not at all where the winner changes. So one replica writes: the primary
writes every point, and the standby holds its own back until the primary's
``/api/coverage`` says the primary has stored that slot (then they are dropped), or shows
it never will (a gap the primary left to its twin, a target it does not scrape), or the
primary stops answering. Only then does the standby write, for those slots alone; the
stored figures change replica once per hand-over, not at every slot.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from ..model import Point

Key = tuple[str, str]  # (service, url as /api/targets shows it)
# (since, until) of a replica: it has stored every slot after ``since`` up to ``until``
Coverage = tuple[float | None, float | None]
Verdict = Literal["drop", "write", "wait"]


def verdict(since: float, stamp: float, primary: Coverage | None, primary_known: bool,
            expired: bool) -> Verdict:
    """What a standby does with its point for the slot ``stamp``, whose increases run from
    its scrape of slot ``since``. ``primary``: the primary's coverage of the target (None:
    it does not scrape it); ``primary_known``: whether the primary answered at all."""
    if not primary_known:
        return "write" if expired else "wait"
    if primary is None:
        return "write"  # the primary does not scrape this target
    first, last = primary
    if since == stamp and first is not None:
        return "drop"  # no interval (a baseline, a failed scrape): the primary's health
    if first is not None and last is not None and first <= since and stamp <= last:
        return "drop"  # every slot of this interval is the primary's
    if first is not None and first >= stamp > since:
        return "write"  # the primary counts from this slot on: it never stores this one
    return "write" if expired else "wait"


@dataclass(slots=True)
class Held:
    since: float  # the slot the interval starts at (its own slot: no interval)
    stamp: float  # the slot the points are stamped with
    points: list[Point]
    at: float  # monotonic: when held


class Handover:
    """A standby's points held per target until the primary's coverage decides them."""

    def __init__(self, deadline_s: float = 30.0, max_held: int = 1000) -> None:
        self.deadline_s = deadline_s  # then written anyway (the primary stores nothing)
        self.max_held = max_held  # per target: beyond it, the oldest is written
        self.held: dict[Key, deque[Held]] = {}
        self._last_good: dict[Key, float] = {}

    def hold(self, key: Key, stamp: float, up: bool, points: list[Point],
             now: float) -> list[Point]:
        """Keep one scrape's points back; returns any that must be written now."""
        since = self._last_good.get(key, stamp) if up else stamp
        if up:
            self._last_good[key] = stamp
        queue = self.held.setdefault(key, deque())
        queue.append(Held(since, stamp, points, now))
        return queue.popleft().points if len(queue) > self.max_held else []

    def settle(self, coverage: Mapping[Key, Coverage] | None, now: float,
               primary_down: bool = False) -> list[Point]:
        """The held points to write now, given the primary's coverage (None: no answer
        this time); those the primary stored are dropped. ``primary_down``: it has not
        answered for a while, so nothing waits any longer."""
        out: list[Point] = []
        known = coverage is not None
        for key, queue in self.held.items():
            primary = coverage.get(key) if coverage is not None else None
            kept: deque[Held] = deque()
            for held in queue:
                expired = primary_down or now - held.at >= self.deadline_s
                decided = verdict(held.since, held.stamp, primary, known, expired)
                if decided == "write":
                    out.extend(held.points)
                elif decided == "wait":
                    kept.append(held)
            self.held[key] = kept
        return out

    def forget(self, key: Key) -> None:
        """A target removed: what it held goes (its slots are no longer scraped)."""
        self.held.pop(key, None)
        self._last_good.pop(key, None)


class StoredSlots:
    """The primary's side: per target, the last slot whose points InfluxDB has taken
    (submissions are numbered by the writer, which settles them in order)."""

    def __init__(self, max_waiting: int = 4096) -> None:
        self.max_waiting = max_waiting
        self._waiting: dict[Key, deque[tuple[int, float]]] = {}
        self._stored: dict[Key, float] = {}

    def queued(self, key: Key, number: int, stamp: float) -> None:
        # Bounded: dropping the oldest only delays the answer, as later ones settle after.
        waiting = self._waiting.setdefault(key, deque(maxlen=self.max_waiting))
        waiting.append((number, stamp))

    def until(self, key: Key, settled: int) -> float | None:
        """The last stored slot of ``key``, given the writer's settled number."""
        waiting = self._waiting.get(key)
        while waiting and waiting[0][0] <= settled:
            self._stored[key] = waiting.popleft()[1]
        return self._stored.get(key)

    def forget(self, key: Key) -> None:
        self._waiting.pop(key, None)
        self._stored.pop(key, None)
