"""The bridge process: one scrape loop per target, the writer, and its own HTTP endpoints.

Each target has its own loop, started at an offset spread over the interval, with its own
timeout, so a slow or dead target never delays the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib.util
import json
import logging
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import schedule
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from . import alerts, overview, rollups, schema, status_page
from .buffer import DiskBuffer
from .client_timings import ClientTimings
from .config import BridgeConfig, Target
from .derive import Point, TargetDeriver
from .exposition import ExpositionError, parse
from .influx import InfluxClient, InfluxError
from .rollup_job import run_period
from .scrape import ScrapeError, fetch, ssl_context
from .thresholds import DEFAULTS, Threshold, worst
from .trends_job import run_trends
from .webhooks import Notifier
from .writer import Writer, WriterMetrics

log = logging.getLogger("promflux.bridge")


def _fetch_script() -> bytes:
    """promflux-fetch.js, a file of the exporter package (same distribution). Located with
    find_spec, which does not import it: the bridge never runs exporter code."""
    spec = importlib.util.find_spec("exporter")
    if spec is None or not spec.submodule_search_locations:
        return b"/* promflux-fetch.js not installed */"
    return (Path(next(iter(spec.submodule_search_locations))) / "static"
            / "promflux-fetch.js").read_bytes()


_SCRIPT = _fetch_script()


@dataclass
class TargetStatus:
    """What the bridge knows of one target, shown at /api/targets and stored in InfluxDB."""

    service: str
    url: str
    up: bool = False
    last_scrape: float | None = None
    duration_ms: float | None = None
    samples: int = 0
    last_error: str = ""
    scrapes: int = 0
    failures: int = 0
    deriver: TargetDeriver | None = field(default=None, repr=False)


class BridgeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.scrapes = Counter("promflux_bridge_scrapes", "Scrapes attempted.", ["service"],
                               registry=registry)
        self.failures = Counter("promflux_bridge_scrape_failures", "Scrapes that failed.",
                                ["service"], registry=registry)
        self.duration = Histogram("promflux_bridge_scrape_duration_seconds",
                                  "Fetch, parse, derive and hand-over of one scrape.",
                                  ["service"], registry=registry)
        self.samples = Gauge("promflux_bridge_samples_scraped", "Samples in the last scrape.",
                             ["service"], registry=registry)
        self.up = Gauge("promflux_bridge_target_up", "1 when the last scrape worked.",
                        ["service"], registry=registry)


def thresholds_of(config: BridgeConfig) -> dict[str, Threshold]:
    """The configured limits as ``Threshold`` objects."""
    out = {}
    for metric, default in DEFAULTS.items():  # direction and scope from the defaults
        limit = getattr(config.thresholds, metric)
        out[metric] = dataclasses.replace(default, warning=limit.warning,
                                          critical=limit.critical, for_seconds=limit.for_)
    # 1 when a scrape works, 0 when it fails: critical at 0, no warning level.
    out["up"] = Threshold("up", 0.5, 0.5, above=False, for_seconds=config.thresholds.down_for)
    return out


def _offset(target: Target, interval: float) -> float:
    """A stable start offset in [0, interval) per target, spreading the load."""
    return (zlib.crc32(f"{target.service} {target.url}".encode()) % 1000) / 1000 * interval


class Bridge:
    """Everything the bridge runs; ``run`` until cancelled."""

    def __init__(self, config: BridgeConfig) -> None:
        self.config = config
        self.registry = CollectorRegistry()
        self.metrics = BridgeMetrics(self.registry)
        influx = config.influxdb
        self.client = InfluxClient(
            influx.url, influx.database, username=influx.username,
            password=influx.password.resolve() if influx.password else None,
            timeout=influx.timeout, ssl_context=ssl_context(influx.tls))
        self.buffer = DiskBuffer(config.buffer.path, config.buffer.max_bytes)
        self.writer = Writer(self.client, self.buffer, WriterMetrics(self.registry),
                             batch_size=influx.batch_size)
        self.targets = [TargetStatus(t.service, t.url, deriver=TargetDeriver(t.service, t.preset))
                        for t in config.targets]
        self.schema_ready = False
        self.thresholds = thresholds_of(config)
        self.evaluator = alerts.Evaluator(self.thresholds)
        self.notifier = Notifier(config.webhooks, self.registry)
        self._states_restored = asyncio.Event()
        self.client_timings = ClientTimings(self.registry)
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None

    # -- scraping --------------------------------------------------------------------------

    async def scrape_once(self, target: Target, status: TargetStatus) -> list[Point]:
        """Scrape one target now; returns the points written (health included)."""
        assert self._session is not None and status.deriver is not None
        scrape_config = self.config.scrape
        timeout = target.timeout or scrape_config.timeout
        started_wall = time.time()
        started = time.perf_counter()
        self.metrics.scrapes.labels(target.service).inc()
        status.scrapes += 1
        points: list[Point] = []
        error = ""
        try:
            fetched = await fetch(self._session, target, timeout, scrape_config.max_body_bytes)
            scraped = parse(fetched.text, status.deriver.cache, fetched.openmetrics,
                            scrape_config.max_samples)
            points = status.deriver.derive(scraped, started_wall)
            status.samples = len(scraped.samples)
        except (ScrapeError, ExpositionError) as exc:
            error = str(exc)
        except Exception as exc:  # a bug must not stop the loop
            log.exception("scrape of %s failed unexpectedly", target.service)
            error = f"internal error: {exc!r}"
        elapsed = time.perf_counter() - started
        status.up = not error
        status.last_error = error
        status.last_scrape = started_wall
        status.duration_ms = elapsed * 1000
        if error:
            status.failures += 1
            self.metrics.failures.labels(target.service).inc()
            log.warning("scrape of %s (%s) failed: %s", target.service, target.url, error)
        self.metrics.duration.labels(target.service).observe(elapsed)
        self.metrics.samples.labels(target.service).set(status.samples if not error else 0)
        self.metrics.up.labels(target.service).set(1 if not error else 0)
        self._evaluate(target, points, started_wall, up=not error)
        points.append((schema.SCRAPES, {"service": target.service, "url": target.url},
                       {"up": 1.0 if not error else 0.0, "duration_ms": elapsed * 1000,
                        "samples": float(status.samples if not error else 0),
                        "last_error": error[:500]}, int(started_wall * 1000)))
        await self.writer.submit(points, rollups.RAW)
        return points

    def _evaluate(self, target: Target, points: list[Point], now: float, up: bool) -> None:
        """Thresholds on this scrape's figures; changes are stored, logged and posted."""
        values = alerts.figures(points, self.config.thresholds.min_requests, target.active)
        values[(schema.ALL, "up")] = 1.0 if up else 0.0
        for change in self.evaluator.evaluate(target.service, values, now):
            points.append(change.point())
            self.notifier.notify(change)
            log.warning("%s %s %s: %s -> %s (%.1f)", change.service, change.endpoint,
                        change.metric, change.previous, change.level, change.value)

    async def _target_loop(self, target: Target, status: TargetStatus) -> None:
        interval = target.interval or self.config.scrape.interval
        loop = asyncio.get_running_loop()
        # Stored threshold states first (bounded: InfluxDB may be down; then they start ok).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._states_restored.wait(), timeout=interval)
        await asyncio.sleep(_offset(target, interval))
        next_at = loop.time()
        while True:
            await self.scrape_once(target, status)
            next_at += interval
            now = loop.time()
            if next_at < now:  # a scrape overran: skip the missed slots, keep the phase
                next_at += ((now - next_at) // interval + 1) * interval
            await asyncio.sleep(next_at - now)

    async def _setup_loop(self) -> None:
        """Create database, policies and CQs; retried while InfluxDB is unreachable."""
        delay = 1.0
        while True:
            try:
                for line in await self.client.setup(self.config.retention.raw,
                                                    self.config.retention.hourly,
                                                    self.config.retention.daily):
                    log.info("InfluxDB: %s", line)
                self.schema_ready = True
                self.writer.set_ready()
                await self._restore_states()
                self._states_restored.set()
                return
            except InfluxError as exc:
                log.warning("InfluxDB set-up failed (retrying in %.0f s): %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _restore_states(self) -> None:
        """The last stored state of every series, so a restart does not notify again.
        (One selector and a plain field: with two selectors InfluxDB returns time 0.)"""
        try:
            results = await self.client.query(
                f'SELECT last("level") AS "level", "value" FROM '
                f'"{rollups.RAW}"."{schema.STATES}" GROUP BY "service", "endpoint", "metric"',
                db=self.config.influxdb.database, epoch="ms")
        except InfluxError as exc:
            log.warning("could not restore threshold states: %s", exc)
            return
        restored = 0
        for result in results:
            for series in result.get("series", []):
                tags = series.get("tags", {})
                for time_ms, level, value in series.get("values", []):
                    self.evaluator.restore((tags.get("service", ""), tags.get("endpoint", ""),
                                            tags.get("metric", "")), level, time_ms / 1000,
                                           value)
                    restored += 1
        if restored:
            log.info("restored %d threshold states from InfluxDB", restored)

    async def run_rollup_job(self, length_s: int, target_rp: str) -> None:
        """Percentiles of the last complete hour or day (see ``rollup_job``), then its trends."""
        now = int(time.time())
        start = now - now % length_s - length_s
        daily = target_rp == rollups.DAILY
        try:
            written = await run_period(self.client, start, length_s, target_rp,
                                       source_rp=rollups.HOURLY if daily else rollups.RAW)
            trends = await run_trends(self.client, start, "day" if daily else "hour")
            log.info("roll-up for %s from %d: %d percentile points, %d trend points",
                     target_rp, start, written, trends)
        except InfluxError as exc:
            log.warning("roll-up for %s failed: %s", target_rp, exc)

    async def _schedule_loop(self) -> None:
        """Wall-clock jobs (the ``schedule`` package), polled from the event loop."""
        scheduler = schedule.Scheduler()
        jobs: set[asyncio.Task[None]] = set()

        def spawn(length_s: int, target_rp: str) -> None:
            task = asyncio.create_task(self.run_rollup_job(length_s, target_rp))
            jobs.add(task)
            task.add_done_callback(jobs.discard)

        # A few minutes after the boundary, once the last scrapes of the period are in.
        scheduler.every().hour.at(":05").do(spawn, 3600, rollups.HOURLY)
        scheduler.every().day.at("00:15").do(spawn, 86400, rollups.DAILY)
        while True:
            scheduler.run_pending()
            await asyncio.sleep(20)

    # -- HTTP ------------------------------------------------------------------------------

    def web_app(self) -> web.Application:
        app = web.Application(client_max_size=1024**2)
        app.router.add_get("/", self._index)
        app.router.add_get("/static/promflux-fetch.js", self._script)
        app.router.add_post("/api/client-timings", self._client_timings)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/api/targets", self._api_targets)
        app.router.add_get("/api/status", self._api_status)
        return app

    async def _index(self, request: web.Request) -> web.Response:
        """The status page; ``?part=main`` is its refreshed content alone."""
        targets = [status_page.TargetRow(t.service, t.url, t.up, t.last_scrape, t.duration_ms,
                                         t.samples, t.last_error) for t in self.targets]
        figures: dict[str, overview.ServiceFigures] = {}
        influx_error = ""
        try:
            figures = overview.reduce(await asyncio.wait_for(
                self.client.query(overview.QUERY, db=self.config.influxdb.database,
                                  epoch="ms"), timeout=5))
        except (InfluxError, TimeoutError) as exc:
            influx_error = str(exc) or "no answer within 5 s"
        main = status_page.render_main(targets, figures, self.states_for_page(),
                                       health=self._health(), thresholds=self.thresholds,
                                       influx_error=influx_error)
        if request.query.get("part") == "main":
            return web.Response(text=main, content_type="text/html")
        return web.Response(text=status_page.render_page(main, self.config.scrape.interval),
                            content_type="text/html")

    def states_for_page(self) -> list[status_page.StateRow]:
        return [status_page.StateRow(service, endpoint, metric, state.level, state.value,
                                     state.since)
                for (service, endpoint, metric), state in self.evaluator.snapshot()
                if state.level != "ok"]

    async def _api_status(self, request: web.Request) -> web.Response:
        """Current threshold states: per service the worst level, and every tracked state."""
        services: dict[str, dict[str, Any]] = {
            t.service: {"level": "ok", "up": t.up, "states": []} for t in self.targets}
        for (service, endpoint, metric), state in self.evaluator.snapshot():
            entry = services.setdefault(service, {"level": "ok", "up": False, "states": []})
            entry["states"].append({"endpoint": endpoint, "metric": metric,
                                    "level": state.level, "value": state.value,
                                    "since": state.since,
                                    "threshold": self.thresholds[metric].bound(state.level)})
            entry["level"] = worst([entry["level"], state.level])
        for entry in services.values():
            if not entry["up"]:
                entry["level"] = "critical"  # a target that cannot be scraped is down
        return web.json_response({"services": services, "generated_at": time.time()})

    async def _script(self, request: web.Request) -> web.Response:
        return web.Response(body=_SCRIPT, content_type="text/javascript", charset="utf-8",
                            headers={"Cache-Control": "max-age=3600"})

    async def _client_timings(self, request: web.Request) -> web.Response:
        body = await request.content.read(1024**2)
        status, text = self.client_timings.record(body)
        return web.Response(status=status, text=text or None)

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry),
                            headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})

    def _health(self) -> dict[str, Any]:
        return {"status": "ok", "schema_ready": self.schema_ready,
                "targets_up": sum(t.up for t in self.targets), "targets": len(self.targets),
                "buffer_batches": len(self.buffer), "last_write_error": self.writer.last_error}

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response(self._health())

    async def _api_targets(self, request: web.Request) -> web.Response:
        rows: list[dict[str, Any]] = [
            {"service": t.service, "url": t.url, "up": t.up, "last_scrape": t.last_scrape,
             "duration_ms": t.duration_ms, "samples": t.samples, "last_error": t.last_error,
             "scrapes": t.scrapes, "failures": t.failures} for t in self.targets]
        return web.Response(text=json.dumps(rows), content_type="application/json")

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(auto_decompress=True)
        self._runner = web.AppRunner(self.web_app(), access_log=None)
        await self._runner.setup()
        host, _, port = self.config.listen.rpartition(":")
        await web.TCPSite(self._runner, host, int(port)).start()
        log.info("bridge listening on http://%s/ (metrics, healthz); %d targets; writing to "
                 "%s database %s", self.config.listen, len(self.targets),
                 self.config.influxdb.url, self.config.influxdb.database)

    async def run(self) -> None:
        """Start everything and run until cancelled; then flush and close."""
        await self.start()
        tasks = [asyncio.create_task(self._setup_loop(), name="setup"),
                 asyncio.create_task(self.writer.run(), name="writer"),
                 asyncio.create_task(self._schedule_loop(), name="schedule"),
                 asyncio.create_task(self.notifier.run(), name="webhooks")]
        tasks += [asyncio.create_task(self._target_loop(t, s), name=f"scrape {t.service}")
                  for t, s in zip(self.config.targets, self.targets, strict=True)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.writer.flush(timeout=5.0)
            await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()
        await self.client.close()
