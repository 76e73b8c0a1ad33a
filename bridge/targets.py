"""The bridge's targets: the static list, the discovery sources and this replica's shard,
merged into one set of running scrape loops and kept in step as any of them changes.

Once the bridge runs, a change is taken up without holding the event loop: the merge (pure)
runs in a thread, the loops are started and stopped in slices, and changes that arrive
during an update are taken up together by the next one."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator

import aiohttp

from .config import BridgeConfig, Target
from .discover.groups import merge
from .discover.sources import FileSource, HttpSource
from .ingest.loop import TargetScraper
from .ingest.resume import export_state, import_state
from .ingest.scrapers import ScraperSet
from .memory import release_memory
from .slices import in_slices
from .store.counters import CounterStates

log = logging.getLogger("promflux.bridge")


class TargetManager:
    def __init__(self, config: BridgeConfig, make: Callable[[Target], TargetScraper],
                 counter_states: CounterStates,
                 gone: Callable[[TargetScraper], None],
                 changed: Callable[[dict[str, bool]], None]) -> None:
        self.make = make
        self.counter_states = counter_states
        self.gone = gone  # told of each removed scraper
        self.changed = changed  # told which services are active after each update
        self.set = ScraperSet(self._make)
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._resumed = 0  # counter states taken up in the current update
        self._saved: set[str] | None = None  # names of the saved counter states, if read
        self._peak = 0  # most targets since memory was last handed back
        self._lock = asyncio.Lock()  # one update at a time
        self.config = config
        self._build_sources()
        self.update()

    async def use(self, config: BridgeConfig) -> None:
        """Take new settings: the sources are rebuilt if theirs changed (files read in a
        thread), then the set is updated."""
        old, self.config = self.config, config
        if (old.file_sd_configs, old.http_sd_configs) != (config.file_sd_configs,
                                                          config.http_sd_configs):
            self._stop_sources()
            await asyncio.to_thread(self._build_sources)
            if self._session is not None:
                self._start_sources(self._session)
        await self.refresh()

    def _build_sources(self) -> None:
        """Sources for the settings; files are read now, HTTP sources at their first poll."""
        files = [FileSource(c) for c in self.config.file_sd_configs]
        for source in files:
            source.refresh()
        self.files, self.https = files, [HttpSource(c) for c in self.config.http_sd_configs]

    def _make(self, target: Target) -> TargetScraper:
        """A scraper, with the counter state saved for it at the last clean shutdown (its
        first scrape then counts what the target served while the bridge was away)."""
        scraper = self.make(target)
        state = self.counter_states.take(target.service, target.url, self._saved)
        if state is not None and import_state(scraper.deriver, state, time.time(),
                                              time.perf_counter()):
            self._resumed += 1
        return scraper

    def _plan(self) -> tuple[list[Target], dict[str, bool], set[str]]:
        """The targets this shard wants, which services are active, and the saved counter
        states on disk. Safe in a thread: the sources' lists are replaced, never changed
        in place."""
        shard = self.config.shard
        found: list[list[Target]] = [s.targets for s in self.files]
        found += [s.targets for s in self.https]
        wanted = merge([self.config.targets, *found], shard.count, shard.index)
        return wanted, active_services(wanted), self.counter_states.names()

    def update(self) -> None:
        """Take up the sources' targets now, in one go (before the loops run)."""
        wanted, active, self._saved = self._plan()
        self._resumed = 0
        added, removed = self.set.reconcile(wanted)
        for scraper in removed:
            self.gone(scraper)
        self._updated(added, removed, active)

    async def refresh(self) -> None:
        """Take up the sources' targets without holding the event loop: the merge in a
        thread, the loops started and stopped in slices."""
        async with self._lock:
            wanted, active, self._saved = await asyncio.to_thread(self._plan)
            self._resumed = 0
            added, removed = await self.set.reconcile_in_slices(wanted)
            # Let go of removed loops a slice at a time: freeing 100,000 at once would
            # hold the loop for 0.3 s.
            self._updated(added, removed, active)
            await in_slices(self._let_go(removed))
        if len(self.set.scrapers) < self._peak // 2:
            self._peak = len(self.set.scrapers)
            await release_memory(self._peak)

    def _updated(self, added: list[TargetScraper], removed: list[TargetScraper],
                 active: dict[str, bool]) -> None:
        self._saved = None
        self._peak = max(self._peak, len(self.set.scrapers))
        if self._resumed:
            log.info("resumed the counter state of %d targets from the last shutdown",
                     self._resumed)
        if added or removed:  # (counted before ``_let_go`` empties ``removed``)
            log.info("targets: %d added, %d removed, %d in all", len(added), len(removed),
                     len(self.set.scrapers))
        self.changed(active)

    def _let_go(self, removed: list[TargetScraper]) -> Iterator[bool]:
        while removed:
            self.gone(removed.pop())
            yield False

    @property
    def scrapers(self) -> list[TargetScraper]:
        return list(self.set.scrapers.values())

    @property
    def problems(self) -> list[str]:
        """What the discovery sources could not read, now."""
        problems = [s.problems for s in self.files] + [s.problems for s in self.https]
        return [p for by_where in problems for ps in by_where.values() for p in ps]

    def _start_sources(self, session: aiohttp.ClientSession) -> None:
        self._tasks = [asyncio.create_task(s.run(self.refresh), name="file discovery")
                       for s in self.files]
        self._tasks += [asyncio.create_task(s.run(session, self.refresh),
                                            name="http discovery")
                        for s in self.https]

    def _stop_sources(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks = []

    async def start(self, session: aiohttp.ClientSession,
                    start: Callable[[TargetScraper], asyncio.Task[None]]) -> None:
        """Poll the HTTP sources once (so the first set is whole), then run every loop and
        every source."""
        self._session = session
        if self.https:
            await asyncio.gather(*(s.refresh(session) for s in self.https))
            await self.refresh()
        await self.set.start(start)
        self._start_sources(session)

    async def stop(self) -> None:
        self._stop_sources()
        await self.set.stop()

    def save_counters(self) -> None:
        for scraper in self.scrapers:
            # (a large answer still read in its thread: its state is not whole, and
            # counting afresh loses an increase where a torn state could invent one)
            state = None if scraper.busy else export_state(scraper.deriver)
            if state is not None:
                try:
                    self.counter_states.save(scraper.target.service, scraper.target.url,
                                             state)
                except OSError as exc:
                    log.warning("could not save the counter state of %s: %s",
                                scraper.target.service, exc)


def active_services(targets: list[Target]) -> dict[str, bool]:
    """Each service, and whether any of its targets is ``active`` (judged on its request
    rate)."""
    active: dict[str, bool] = {}
    for target in targets:
        active[target.service] = active.get(target.service, False) or target.active
    return active
