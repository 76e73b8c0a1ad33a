"""Counter increases and rates between scrapes, with restart handling. Pure, no I/O.

See docs/algorithms.md (counter increases and rates). A tracker keeps the last value of
every counter series of one target; the first scrape is a baseline, a series that appears
later counts from zero, and a counter that goes down restarted.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Generic, TypeVar

from ..native import compiled

K = TypeVar("K", bound=Hashable)
_INF = float("inf")
# A decrease no larger than this share of the value is float rounding, not a restart:
# doubles carry about 1e-16 relative precision, and sums of many such steps stay far below.
NOISE = 1e-9


class CounterTracker(Generic[K]):
    """Per-target counter state: ``update`` turns cumulative values into increases.

    Every series keeps its own last value: a counter that went down restarted (its new
    value is the increase), whatever the others did. A series missing from a scrape keeps
    its last value for ``stale_after`` seconds, so when it comes back only what it gained
    meanwhile counts (not its whole value); after that it is forgotten and counts from
    zero when it returns. Values that no counter can have (negative, NaN, infinite) are
    skipped: the series keeps its last good value. Times are monotonic seconds.
    """

    __slots__ = ("_last", "_time", "_absent", "_pruned", "stale_after", "max_absent",
                 "restarts", "_held")

    def __init__(self, stale_after: float = 900.0, max_absent: int = 200_000) -> None:
        self._last: dict[K, float] = {}
        self._time: float | None = None
        self._absent: dict[K, tuple[float, float]] = {}  # key -> (last value, gone since)
        self._pruned = 0.0
        self.stale_after = stale_after
        self.max_absent = max_absent  # bounds memory when a target churns through series
        self.restarts = 0
        # The present series' values when a caller holds them (``went_on``): made into
        # ``_last`` when next needed.
        self._held: Callable[[], dict[K, float]] | None = None

    @property
    def time(self) -> float | None:
        """When the last update was (monotonic seconds; None before the first)."""
        return self._time

    def __len__(self) -> int:
        """Series tracked, absent ones included."""
        return len(self._last) + len(self._absent)

    def last_values(self) -> dict[K, float]:
        """Each present series' last value (not to be changed by the caller)."""
        self._settle()
        return self._last

    def _settle(self) -> None:
        if self._held is not None:
            self._last, self._held = self._held(), None

    def seed(self, values: Mapping[K, float], time: float) -> None:
        """Start from ``values`` seen at ``time`` (a bridge restart's saved state): the next
        ``update`` counts what each series gained since then."""
        self._last = dict(values)
        self._time = time
        self._absent = {}
        self._held = None

    def update(
        self, now: float, values: Mapping[K, float], restarted: bool = False,
        give: bool = False,
    ) -> tuple[dict[K, float], float | None]:
        """Increases since the previous scrape and the seconds between the two scrapes.

        Returns ({}, None) for the first scrape (a baseline, never a spike). ``restarted``
        (the target's start time changed) makes every series count from zero. ``give``:
        ``values`` (a dict) is the tracker's from now on, kept as its state, not copied.
        """
        self._settle()
        previous, last, absent = self._time, self._last, self._absent
        self._time = now
        # The new state, fixed up below for the few values that are not counts. (A copy
        # touches every series' key and value: with many targets, memory-bound.)
        new = values if give and isinstance(values, dict) else dict(values)
        increases: dict[K, float] = {}
        if restarted:  # every series counts from zero
            absent.clear()
            last = {}
        get = last.get
        if compiled is not None and isinstance(values, dict):
            slow: list[K] = compiled.counter_increases(values, last, increases)
        else:
            slow = []
            # The hot loop: a counter that went on (NaN and infinity fail the comparison).
            inf = _INF
            for key, value in values.items():
                old = get(key)
                if old is not None and old <= value < inf:
                    increases[key] = value - old
                else:
                    slow.append(key)
        went_down, found = False, len(values) - len(slow)
        for key in slow:
            value, old = values[key], get(key)
            if old is not None:
                found += 1
            elif absent:
                gone = absent.pop(key, None)
                old = None if gone is None else gone[0]
            if not 0.0 <= value < _INF:  # negative, NaN or infinite: not a counter value
                if old is None:
                    del new[key]
                else:
                    new[key] = old
            elif old is None:
                increases[key] = value  # a series first seen now counts from zero
            elif value >= old:
                increases[key] = value - old  # (back after an absence)
            elif old - value <= NOISE * old:
                # A float counter read twice within one clock tick (CPU seconds) can step
                # back by a rounding error: no increase, and the higher value is kept so
                # the step is not counted again.
                increases[key] = 0.0
                new[key] = old
            else:  # this counter went down: its process restarted
                increases[key] = value
                went_down = True
        if found < len(last):  # some series are missing: keep them for a while
            for key in last.keys() - values.keys():
                absent[key] = (last[key], now)
        self._last = new
        self._keep_absent_bounded(now)
        if previous is None:
            return {}, None
        if went_down or restarted:
            self.restarts += 1
        return increases, now - previous

    def went_on(self, now: float, values: Callable[[], dict[K, float]]) -> float | None:
        """``update`` of a scrape in which every present series came back, went on (no
        lower, finite) and no other came, its values held by the caller: ``values`` gives
        them as a dict (the ``values`` of ``update``) when they are next needed. No series
        restarted: the increases are the caller's to take. Returns the seconds since the
        scrape before (None for a first scrape)."""
        previous, self._time, self._held = self._time, now, values
        self._keep_absent_bounded(now)
        return None if previous is None else now - previous

    def _keep_absent_bounded(self, now: float) -> None:
        # Absent series are kept up to about one scrape's worth (a target churning through
        # series keeps memory flat), and never past ``max_absent``. (While values are held,
        # ``_last`` has the same series, with older values.)
        bound = min(self.max_absent, len(self._last) + 1024)
        if self._absent and (now - self._pruned > self.stale_after / 4
                             or len(self._absent) > bound):
            self._prune(now, bound)

    def _prune(self, now: float, bound: int) -> None:
        """Forget series absent for longer than ``stale_after`` (linear in the absent)."""
        self._pruned = now
        horizon = now - self.stale_after
        kept = [(k, v) for k, v in self._absent.items() if v[1] >= horizon]
        # Over the bound: the longest gone go first (insertion order is the order gone).
        self._absent = dict(kept[max(len(kept) - bound, 0):])


def per_minute(increase: float, seconds: float) -> float | None:
    """Increase over ``seconds`` as a rate per minute (None without a positive interval)."""
    if seconds <= 0:
        return None
    return increase * 60.0 / seconds


def error_rate_percent(errors: float, requests: float) -> float | None:
    """100 x errors / requests; None when there were no requests."""
    if requests <= 0:
        return None
    return 100.0 * errors / requests
