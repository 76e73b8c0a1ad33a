"""The bridge's targets: the static list, the discovery sources and this replica's shard,
merged into one set of running scrape loops and kept in step as any of them changes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import aiohttp

from .analyze.resume import export_state, import_state
from .config import BridgeConfig, Target
from .discover.groups import merge
from .discover.sources import FileSource, HttpSource
from .ingest.loop import TargetScraper
from .ingest.scrapers import ScraperSet
from .store.counters import CounterStates

log = logging.getLogger("promflux.bridge")


class TargetManager:
    def __init__(self, config: BridgeConfig, make: Callable[[Target], TargetScraper],
                 counter_states: CounterStates,
                 changed: Callable[[list[TargetScraper], list[TargetScraper]], None]
                 ) -> None:
        self.make = make
        self.counter_states = counter_states
        self.changed = changed  # told (removed, all) scrapers after every update
        self.set = ScraperSet(self._make)
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._resumed = 0  # counter states taken up in the current update
        self.config = config
        self._build_sources()
        self.update()

    def use(self, config: BridgeConfig) -> None:
        """Take new settings: the sources are rebuilt if theirs changed, then the set is
        updated."""
        old, self.config = self.config, config
        if (old.file_sd_configs, old.http_sd_configs) != (config.file_sd_configs,
                                                          config.http_sd_configs):
            self._stop_sources()
            self._build_sources()
            if self._session is not None:
                self._start_sources(self._session)
        self.update()

    def _build_sources(self) -> None:
        """Sources for the settings; files are read now, HTTP sources at their first poll."""
        self.files = [FileSource(c) for c in self.config.file_sd_configs]
        self.https = [HttpSource(c) for c in self.config.http_sd_configs]
        for source in self.files:
            source.refresh()

    def _make(self, target: Target) -> TargetScraper:
        """A scraper, with the counter state saved for it at the last clean shutdown (its
        first scrape then counts what the target served while the bridge was away)."""
        scraper = self.make(target)
        state = self.counter_states.take(target.service, target.url)
        if state is not None and import_state(scraper.deriver, state, time.time(),
                                              time.perf_counter()):
            self._resumed += 1
        return scraper

    def update(self) -> None:
        shard = self.config.shard
        found: list[list[Target]] = [s.targets for s in self.files]
        found += [s.targets for s in self.https]
        wanted = merge([self.config.targets, *found], shard.count, shard.index)
        self._resumed = 0
        added, removed = self.set.reconcile(wanted)
        if self._resumed:
            log.info("resumed the counter state of %d targets from the last shutdown",
                     self._resumed)
        if added or removed:
            log.info("targets: %d added, %d removed, %d in all", len(added), len(removed),
                     len(self.set.scrapers))
        self.changed(removed, self.scrapers)

    @property
    def scrapers(self) -> list[TargetScraper]:
        return list(self.set.scrapers.values())

    @property
    def problems(self) -> list[str]:
        """What the discovery sources could not read, now."""
        problems = [s.problems for s in self.files] + [s.problems for s in self.https]
        return [p for by_where in problems for ps in by_where.values() for p in ps]

    def _start_sources(self, session: aiohttp.ClientSession) -> None:
        self._tasks = [asyncio.create_task(s.run(self.update), name="file discovery")
                       for s in self.files]
        self._tasks += [asyncio.create_task(s.run(session, self.update), name="http discovery")
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
            self.update()
        self.set.start(start)
        self._start_sources(session)

    async def stop(self) -> None:
        self._stop_sources()
        await self.set.stop()

    def save_counters(self) -> None:
        for scraper in self.scrapers:
            state = export_state(scraper.deriver)
            if state is not None:
                try:
                    self.counter_states.save(scraper.target.service, scraper.target.url,
                                             state)
                except OSError as exc:
                    log.warning("could not save the counter state of %s: %s",
                                scraper.target.service, exc)
