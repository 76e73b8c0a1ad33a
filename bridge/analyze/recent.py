"""Baselines from the bridge's own recent windows, for endpoints whose stored history is
still too short (a service in its first hour, a new endpoint). Pure, no I/O.

Every full window of the regression rules, each endpoint's counts over that window are
kept as its "previous window" baseline; the stored baselines (same hour last week, the
previous hour) take precedence where they exist. While an endpoint's regression is on or
pending its baseline is held, as a stored one is: else a long regression would become its
own baseline and resolve unfixed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from . import schema
from .regression import Baseline
from .window import Counts, ServiceWindow

PREVIOUS_WINDOW = "previous window (in memory)"


@dataclass
class RecentBaselines:
    length: float  # the regression rules' window, seconds
    found: dict[tuple[str, str], Baseline] = field(default_factory=dict)
    _taken: dict[str, float] = field(default_factory=dict)  # service -> when, last

    def take(self, service: str, window: ServiceWindow, now: float,
             held: Callable[[str, str], bool]) -> None:
        """Keep the last full window's counts as the baselines of ``service``'s endpoints
        once per window length; ``held`` endpoints keep theirs."""
        last = self._taken.get(service)
        if (last is not None and now - last < self.length) or not window.full(self.length,
                                                                             now):
            return
        self._taken[service] = now
        window.settle()
        run = window.run(self.length)
        for endpoint, counts in [*run.endpoints.items(), (schema.ALL, run.service())]:
            if not held(service, endpoint) and counts.requests > 0:
                kept = Counts()
                kept.add(counts)  # a copy: the window's sums go on changing
                self.found[(service, endpoint)] = Baseline(kept, PREVIOUS_WINDOW)

    def forget(self, service: str) -> None:
        self._taken.pop(service, None)
        for key in [k for k in self.found if k[0] == service]:
            del self.found[key]
