"""The bridge process: wiring and lifecycle.

The parts live by concern: ``ingest`` scrapes (one loop per target), ``analyze`` turns
samples into figures and threshold states, ``store`` writes InfluxDB, ``jobs`` rolls up
finished hours and days, ``serve`` answers HTTP and posts webhooks. ``Bridge`` builds
them from the configuration, connects the scrape loops to thresholds and the writer, and
starts and stops them together.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

from .analyze.alerts import Evaluator, Key, State
from .analyze.rule_book import rule_book
from .analyze.rules import RuleBook
from .analyze.window import Increments
from .config import BridgeConfig, ConfigError, Target, load
from .health import problems
from .ingest.loop import ScrapeMetrics, Tally, TargetScraper, TargetStatus
from .jobs.baselines import BaselineJob
from .jobs.heal import Healer
from .jobs.schedule import run_schedule
from .loop_lag import LoopLag
from .model import Point
from .notify.alertmanager import AlertmanagerSender
from .notify.peer import PeerWatch
from .notify.webhooks import Notifier
from .redact import redact
from .reload import apply_config
from .serve.http import BridgeHandlers
from .store import rollups
from .store.buffer import COUNTERS, DiskBuffer
from .store.connect import influx_client
from .store.counters import CounterStates
from .store.pair import PairStore
from .store.setup import create_schema, stored_states
from .store.storage import Storage
from .store.writer import Writer, WriterMetrics, tally
from .targets import TargetManager

log = logging.getLogger("promflux.bridge")


class Bridge:
    """Everything the bridge runs; ``run`` until cancelled."""

    def __init__(self, config: BridgeConfig, config_path: Path | None = None) -> None:
        self.config = config
        self.config_path = config_path  # what a reload reads again
        self.reload_status: dict[str, Any] = {"ok": True, "at": None, "message": ""}
        self.registry = CollectorRegistry()
        influx = config.influxdb
        self.client = influx_client(influx)
        # Every retention policy the bridge writes: the jobs' points are buffered too.
        self.buffer = DiskBuffer(config.buffer.path, config.buffer.max_bytes,
                                 rps=("", rollups.RAW, rollups.HOURLY, rollups.DAILY))
        self.storage = Storage(self.client, influx.database)
        self.healer = Healer(self.storage, config.retention.raw)
        self.writer = Writer(self.client, self.buffer, WriterMetrics(self.registry),
                             batch_size=influx.batch_size, on_written=self.healer.written,
                             flush_interval=influx.flush_interval)
        self.storage.writer = self.writer  # the jobs write through the writer too
        self._session: aiohttp.ClientSession | None = None
        self.peer = PeerWatch(config.ha)
        self._twin_covers = partial(self.peer.covers, lambda: self._session)
        self.pair = PairStore(self.writer, "single" if config.ha is None
                              else "primary" if config.ha.primary else "standby")
        self.book = rule_book(config)
        self.thresholds = self.book.base
        self._active: dict[str, bool] = {}
        self.scrape_metrics = ScrapeMetrics(self.registry)
        self.tally = Tally()
        self.loop_lag = LoopLag(self.registry)
        self.evaluator = Evaluator(self.book)
        self.targets = TargetManager(config, self._make_scraper,
                                     CounterStates(config.buffer.path / COUNTERS),
                                     self._target_gone, self._targets_changed)
        self.schema_ready = False
        regression = config.thresholds.regression
        self.baselines = BaselineJob(self.storage, self.evaluator,
                                     max(self.book.lengths()),
                                     regression.min_baseline_requests, regression.refresh)
        self.notifier = Notifier(config.webhooks, self.registry)
        self.alertmanager = AlertmanagerSender(config.alertmanagers, self.registry)
        self.handlers = BridgeHandlers(self, config.scrape.interval)
        self._started_up = asyncio.Event()
        self._runner: web.AppRunner | None = None

    def use_rules(self, book: RuleBook) -> None:
        """New thresholds, for every consumer: the alert states and the running scrapers
        (``requests_within_limit`` counts up to the p95 limit)."""
        self.book, self.thresholds = book, book.base
        self.evaluator.book = book
        for scraper in self.scrapers:
            scraper.deriver.latency_limit_s = self._latency_limit_s

    @property
    def _latency_limit_s(self) -> float:  # the p95 limit, as a bound
        return self.thresholds["p95_ms"].warning / 1000

    def _make_scraper(self, target: Target) -> TargetScraper:
        limit_s = self._latency_limit_s
        return TargetScraper(target, self.config.scrape, self.scrape_metrics,
                             self.handle_scrape, limit_s, lambda: self.writer.backlogged,
                             align=self.config.ha is not None,
                             twin_covers=self._twin_covers if self.config.ha else None,
                             tally=self.tally)

    def _target_gone(self, scraper: TargetScraper) -> None:
        """A removed target is gone, not down: its states and windows leave with it."""
        self.tally.gone(scraper.status)
        self.evaluator.forget(scraper.target.service, scraper.target.url)
        self.pair.forget((scraper.target.service, scraper.status.url))

    def _targets_changed(self, active: dict[str, bool]) -> None:
        self._active = active  # a service is active when any of its targets is

    @property
    def scrapers(self) -> list[TargetScraper]:
        return self.targets.scrapers

    async def reload(self) -> list[str]:
        """Read the configuration file again and apply it; returns what changed. Raises
        ConfigError (the old configuration keeps running) when it is not valid."""
        try:
            if self.config_path is None:
                raise ConfigError("this bridge was not started from a configuration file")
            config = load(self.config_path)
        except ConfigError as exc:
            self.reload_status = {"ok": False, "at": time.time(), "message": str(exc)}
            log.error("configuration reload refused, the old one keeps running: %s", exc)
            raise
        changes = await apply_config(self, config)
        self.reload_status = {"ok": True, "at": time.time(), "message": "; ".join(changes)}
        log.info("configuration reloaded: %s", "; ".join(changes) or "nothing changed")
        return changes

    @property
    def statuses(self) -> Sequence[TargetStatus]:
        return [scraper.status for scraper in self.scrapers]

    def states(self) -> list[tuple[Key, State]]:
        return self.evaluator.snapshot()

    def health(self) -> dict[str, Any]:
        failing, tally = self.writer.health.failing_since, self.tally
        reasons = problems(None if failing is None else time.perf_counter() - failing,
                           self.config.influxdb.unhealthy_after,
                           self.writer.health.last_error, tally.scraped, tally.up)
        return {"status": "degraded" if reasons else "ok", "problems": reasons,
                "schema_ready": self.schema_ready,
                "targets_up": tally.up, "targets": len(self.targets.set.scrapers),
                # batches not yet in InfluxDB: queued in memory or buffered on disk
                "buffer_batches": self.writer.pending,
                "last_write_error": self.writer.health.last_error,
                "discovery_problems": self.targets.problems, "reload": self.reload_status}

    # -- one scrape's points: thresholds, then the writer ---------------------------------

    async def handle_scrape(self, target: Target, points: list[Point], now: float,
                            stamp: float, up: bool, found: Increments | None) -> None:
        """Judge the service's windows with this scrape in (changes are stored, logged and
        posted), then write (an HA standby: hold until the primary has stored the slot)."""
        active = self._active.get(target.service, False)
        for change in self.evaluator.observe(target.service, target.url, found, now, up,
                                             active):
            points.append(change.point())
            if self.peer.sends_webhooks:  # one replica of an HA pair
                self.notifier.notify(change)
            self.alertmanager.notify(change)
            log.warning("%s %s %s: %s -> %s (%.1f)", change.service, change.endpoint,
                        change.metric, change.previous, change.level, change.value)
        # queued: the loop never waits on I/O
        self.pair.store((target.service, redact(target.url)), stamp, up, points)

    # -- lifecycle -------------------------------------------------------------------------

    async def _start_up(self) -> None:
        """Schema first (writes wait for it), then the stored threshold states."""
        influx = self.config.influxdb
        if influx.manage_schema:
            await create_schema(self.client, self.config.retention,
                                influx.continuous_queries, influx.replication)
        self.schema_ready = True
        self.writer.set_ready()
        await _restore_states(self)
        self._started_up.set()

    async def start(self) -> None:
        """Open the HTTP client and start listening."""
        self._runner = web.AppRunner(self.handlers.app(), access_log=None)
        await self._runner.setup()
        await _listen(self._runner, self.config.listen)
        self._session = aiohttp.ClientSession(auto_decompress=True)
        log.info("bridge listening on http://%s/ (metrics, healthz); %d targets; writing to "
                 "%s database %s", self.config.listen, len(self.scrapers),
                 redact(self.config.influxdb.url), self.config.influxdb.database)

    async def run(self) -> None:
        """Start everything and run until cancelled; then flush and close."""
        await self.start()
        session = self._session
        assert session is not None
        await self.targets.start(session, lambda s: asyncio.create_task(
            s.run(session, self._started_up), name=f"scrape {s.target.service}"))
        tasks = [asyncio.create_task(self._start_up(), name="setup"),
                 asyncio.create_task(self.writer.run(), name="writer"),
                 asyncio.create_task(run_schedule(
                     self.storage, self._started_up,
                     continuous_queries=self.config.influxdb.continuous_queries),
                     name="schedule"),
                 asyncio.create_task(self.peer.run(session, self.pair.settle),
                                     name="ha peer"),
                 asyncio.create_task(self.healer.run(), name="heal"),
                 asyncio.create_task(self.notifier.run(), name="webhooks"),
                 asyncio.create_task(self.alertmanager.run(), name="alertmanager"),
                 asyncio.create_task(self.loop_lag.run(), name="loop lag")]
        if self.config.thresholds.regression.enabled:
            tasks.append(asyncio.create_task(self.baselines.run(self._started_up),
                                             name="baselines"))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.targets.stop()
            await self.writer.flush(timeout=5.0)  # what is not written stays on disk
            self.targets.save_counters()  # so they match what was counted
            log.info("stopped: %s", " ".join(
                f"{k}={v:.0f}" for k, v in tally(self.writer).items()))
            await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()
        await self.client.close()


async def _restore_states(bridge: Bridge) -> None:
    """The threshold states stored before the last stop, for the services still scraped
    (a service since removed from the configuration is not shown)."""
    restored = 0
    services = {s.target.service for s in bridge.scrapers}
    stored = await stored_states(bridge.client, bridge.config.influxdb.database)
    for key, level, since, value in stored:
        if key[0] in services:
            bridge.evaluator.restore(key, level, since, value)  # type: ignore[arg-type]
            bridge.alertmanager.restore(key, level, since, value)
            restored += 1
    if restored:
        log.info("restored %d threshold states from InfluxDB", restored)


class ListenError(Exception):
    """The bridge cannot listen where its settings say (the message says why)."""


async def _listen(runner: web.AppRunner, listen: str) -> None:
    host, _, port = listen.rpartition(":")
    try:
        await web.TCPSite(runner, host, int(port)).start()
    except OSError as exc:
        hint = ("another process listens there: stop it, or set listen: to a free port"
                if exc.errno == errno.EADDRINUSE else "set listen: to an address of this host")
        why = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        raise ListenError(f"cannot listen on {listen}: {why} ({hint})") from None
