"""Counter increases and rates between scrapes, with restart handling. Pure, no I/O.

See docs/algorithms.md (counter increases and rates). A tracker keeps the last value of
every counter series of one target; the first scrape is a baseline, a series that appears
later counts from zero, and a counter that goes down means the target restarted.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class CounterTracker(Generic[K]):
    """Per-target counter state: ``update`` turns cumulative values into increases."""

    __slots__ = ("_last", "_time", "restarts")

    def __init__(self) -> None:
        self._last: dict[K, float] = {}
        self._time: float | None = None
        self.restarts = 0

    def update(
        self, timestamp: float, values: Mapping[K, float], restarted: bool = False
    ) -> tuple[dict[K, float], float | None]:
        """Increases since the previous scrape and the seconds between the two scrapes.

        Returns ({}, None) for the first scrape (a baseline, never a spike). When any
        counter went down, or ``restarted`` says so (its start time changed), every series
        counts from zero: the target restarted and its counters began again.
        """
        previous, last = self._time, self._last
        self._last = dict(values)
        self._time = timestamp
        if previous is None:
            return {}, None
        if not restarted:
            increases: dict[K, float] = {}
            get = last.get
            for key, value in values.items():
                old = get(key)
                if old is None:
                    increases[key] = value  # a series first seen now counts from zero
                elif value >= old:
                    increases[key] = value - old
                elif value < old:  # a counter went down: the target restarted
                    restarted = True
                    break
                # (NaN on either side: no increase for this series)
        if restarted:
            self.restarts += 1
            return dict(values), timestamp - previous
        return increases, timestamp - previous


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
