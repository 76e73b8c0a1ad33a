"""The running scrape loops, one per target, kept in step with a changing target list.

``reconcile`` starts loops for new targets and stops those of removed ones; a target that
is unchanged keeps its loop, and with it its rate state and its place in the interval.
A target whose settings changed is replaced (its state restarts)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from ..config import Target
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
        wanted = {(t.service, t.url): t for t in targets}
        removed = [s for key, s in self.scrapers.items()
                   if key not in wanted or wanted[key] != s.target]
        for scraper in removed:
            key = (scraper.target.service, scraper.target.url)
            del self.scrapers[key]
            task = self._tasks.pop(key, None)
            if task is not None:
                task.cancel()
        added = []
        for key, target in wanted.items():
            if key not in self.scrapers:
                scraper = self.scrapers[key] = self.make(target)
                added.append(scraper)
                if self._start is not None:
                    self._tasks[key] = self._start(scraper)
        return added, removed

    def start(self, start: Callable[[TargetScraper], asyncio.Task[None]]) -> None:
        """Run every loop (now and for targets added later) as a task made by ``start``."""
        self._start = start
        for key, scraper in self.scrapers.items():
            if key not in self._tasks:
                self._tasks[key] = start(scraper)

    async def stop(self) -> None:
        self._start = None
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
