"""The running scrape loops, one per target, kept in step with a changing target list.

``reconcile`` starts loops for new targets and stops those of removed ones; a target that
is unchanged keeps its loop, and with it its rate state and its place in the interval.
A target whose settings changed is replaced (its state restarts).

A discovery source may hand over 100,000 targets at once: the async forms do the same
work in slices (see ``slices``), handing the event loop back between them, so the
other loops keep their slots while a large set is taken up."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator

from ..config import Target
from ..slices import in_slices
from .loop import TargetScraper

Key = tuple[str, str]  # (service, URL)


class ScraperSet:
    def __init__(self, make: Callable[[Target], TargetScraper]) -> None:
        self.make = make
        self.scrapers: dict[Key, TargetScraper] = {}
        self._tasks: dict[Key, asyncio.Task[None]] = {}
        self._start: Callable[[TargetScraper], asyncio.Task[None]] | None = None

    def reconcile(self, targets: Iterable[Target]
                  ) -> tuple[list[TargetScraper], list[TargetScraper]]:
        """Make the running set match ``targets``; returns (added, removed)."""
        added: list[TargetScraper] = []
        removed: list[TargetScraper] = []
        for _ in self._reconcile(targets, added, removed):
            pass  # (all at once: before the loops run)
        return added, removed

    async def reconcile_in_slices(self, targets: Iterable[Target]
                                  ) -> tuple[list[TargetScraper], list[TargetScraper]]:
        """``reconcile``, giving the event loop a turn between slices."""
        added: list[TargetScraper] = []
        removed: list[TargetScraper] = []
        await in_slices(self._reconcile(targets, added, removed))
        return added, removed

    def _reconcile(self, targets: Iterable[Target], added: list[TargetScraper],
                   removed: list[TargetScraper]) -> Iterator[bool]:
        """The work of ``reconcile``, one target per step. Each step leaves the set
        consistent (what other code reads between slices)."""
        wanted: dict[Key, Target] = {}
        for target in targets:
            wanted[(target.service, target.url)] = target
            yield False
        for key, scraper in list(self.scrapers.items()):
            if key not in wanted or wanted[key] != scraper.target:
                removed.append(scraper)
            yield False
        for scraper in removed:
            key = (scraper.target.service, scraper.target.url)
            del self.scrapers[key]
            task = self._tasks.pop(key, None)
            if task is not None:
                task.cancel()
            yield task is not None
        for key, target in wanted.items():
            started = False
            if key not in self.scrapers:
                scraper = self.scrapers[key] = self.make(target)
                added.append(scraper)
                if self._start is not None:
                    self._tasks[key] = self._start(scraper)
                    started = True
            yield started

    async def start(self, start: Callable[[TargetScraper], asyncio.Task[None]]) -> None:
        """Run every loop (now and for targets added later) as a task made by ``start``."""
        self._start = start
        await in_slices(self._start_all(start))

    def _start_all(self, start: Callable[[TargetScraper], asyncio.Task[None]]
                   ) -> Iterator[bool]:
        for key, scraper in list(self.scrapers.items()):
            started = key not in self._tasks and key in self.scrapers
            if started:
                self._tasks[key] = start(scraper)
            yield started

    async def stop(self) -> None:
        self._start = None
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
