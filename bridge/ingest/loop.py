"""The per-target scrape loop: fetch, parse, derive, then hand the points to a sink.

Each target has its own loop, started at an offset spread over the interval, with its own
timeout, so a slow or dead target never delays the others. The loop knows nothing of
thresholds or storage: what happens to a scrape's points is the sink's business.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
import zlib
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ..analyze import schema
from ..analyze.derive import Derived, TargetDeriver
from ..analyze.window import Increments
from ..config import ScrapeConfig, Target
from ..model import Point, Scrape
from ..redact import redact
from .exposition import ExpositionError, not_metrics, parse
from .fetch import AuthCache, Fetched, ScrapeError, fetch
from .steady import SteadyPages

log = logging.getLogger("promflux.bridge")
T = TypeVar("T")

# (target, points, scrape start as wall-clock seconds, the points' time (the slot's when
# aligned), whether the scrape worked, what it adds to the threshold windows)
Sink = Callable[[Target, list[Point], float, float, bool, Increments | None],
                Awaitable[None]]
# (service, url as shown, since, until) -> whether an HA twin stored every interval between
TwinCovers = Callable[[str, str, float, float], Awaitable[bool]]


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
    deferred: int = 0
    missed: int = 0  # slots skipped: the scrape before them ended after they were due
    warning: str = ""  # what the last good scrape refused or dropped, if anything
    covered_since: float | None = None  # every interval stored since (a slot's time)
    covered_until: float | None = None  # up to this slot (the last one stored)
    labels: dict[str, str] = field(default_factory=dict)  # the target's own tags


@dataclass
class Tally:
    """Across every target: how many have been scraped, and how many are up now. Kept as
    scrapes end (and as targets go), so /healthz never walks 100,000 statuses."""

    scraped: int = 0
    up: int = 0

    def recorded(self, status: TargetStatus, up: bool) -> None:
        """``status`` is about to take a scrape's outcome."""
        self.scraped += status.last_scrape is None
        self.up += up - status.up

    def gone(self, status: TargetStatus) -> None:
        self.scraped -= status.last_scrape is not None
        self.up -= status.up


class ScrapeMetrics:
    """The bridge's own metrics about its scrapes."""

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
        self.missed = Counter(
            "promflux_bridge_scrape_slots_missed",
            "Scrape slots skipped because the scrape before them ended after they were due "
            "(a slow target, or a busy bridge).", ["service"], registry=registry)
        self.deferred = Counter(
            "promflux_bridge_scrapes_deferred",
            "Scrapes put off to the next interval while the writer was backlogged.",
            ["service"], registry=registry)


OFF_LOOP_CHARS = 1_000_000  # (about 10,000 samples) answers read in a thread from here on
SLOW_DIGEST_S = 0.02  # a target whose answer took longer has its next one read in the thread
# A target's first answer holds only new series (a hundred times the work of known ones):
# read in the thread from here on (about 1,000 series, some 15 ms on the loop).
FIRST_OFF_LOOP_CHARS = 64_000
_LARGE: list[ThreadPoolExecutor] = []


def _large_answers() -> ThreadPoolExecutor:
    if not _LARGE:
        _LARGE.append(ThreadPoolExecutor(1, thread_name_prefix="promflux-large-answers"))
    return _LARGE[0]


def start_offset(target: Target, interval: float) -> float:
    """A stable start offset in [0, interval) per target, spreading the load."""
    return (zlib.crc32(f"{target.service} {target.url}".encode()) % 1000) / 1000 * interval


def parse_answer(fetched: Fetched, deriver: TargetDeriver, max_samples: int | None) -> Scrape:
    """An answer's samples, in the deriver's series cache."""
    scraped = parse(fetched.text, deriver.cache, fetched.openmetrics, max_samples)
    if not scraped.samples:
        # An empty page (a proxy's blank 200, a service still starting) is no scrape:
        # nothing is stored, and the next good one counts the gap.
        raise ScrapeError("the answer holds no samples (an empty page)")
    return scraped


class TargetScraper:
    """One target: its status, its rate state (the deriver) and its loop."""

    def __init__(self, target: Target, config: ScrapeConfig, metrics: ScrapeMetrics,
                 sink: Sink, latency_limit_s: float = 0.5,
                 hold: Callable[[], bool] = lambda: False, align: bool = False,
                 twin_covers: TwinCovers | None = None, tally: Tally | None = None) -> None:
        self.target = target
        self.tally = tally
        # An HA replica's twin stores the same slots: after a stall (a frozen process, a
        # put-off scrape) the slots this replica missed may be the twin's, and one point
        # holding all of them would overwrite the twin's point of a single slot.
        self.twin_covers = twin_covers
        self._resync = False  # the next interval is the twin's too (see _twin_stored)
        # Points stamped with their slot's time, not the scrape's: a twin replica scraping
        # the same target stamps the same, and InfluxDB keeps one point, not two.
        self.align = align
        # True while the points cannot be stored as fast as they come: a scrape put off
        # loses nothing of a counter (the next one's increases cover the gap), where points
        # dropped from a full write queue would be lost.
        self.hold = hold
        self.config = config
        self.metrics = metrics
        self.sink = sink
        self.status = TargetStatus(target.service, redact(target.url), labels=target.labels)
        self.deriver = TargetDeriver(target.service, target.preset, config.max_samples,
                                     latency_limit_s, target.labels)
        self.auth = AuthCache(target)
        self.steady = SteadyPages(self.deriver)
        self.busy = False  # a large answer is being read in the thread (see _off_loop)
        self._slow: bool | None = None  # the last answer took long to read (None: no answer)

    @property
    def interval(self) -> float:
        return self.target.interval or self.config.interval

    def stamp(self, wall: float) -> float:
        """The points' time for a scrape started at ``wall``: itself, or aligned, the time
        of the target's slot (its offset within the interval) that the scrape belongs to:
        the last one begun, or the next if it is under a quarter interval away (a timer
        that fires a little early). A scrape late by more than half an interval (after a
        stall) keeps its own slot rather than taking the next one from the scrape due there.
        """
        if not self.align:
            return wall
        interval = self.interval
        offset = start_offset(self.target, interval)
        return offset + math.floor((wall - offset) / interval + 0.25) * interval

    async def scrape_once(self, session: aiohttp.ClientSession) -> list[Point]:
        """Scrape now and hand the points (health included) to the sink; returns them."""
        target, status, config = self.target, self.status, self.config
        started_wall = time.time()
        started = time.perf_counter()  # monotonic: intervals and durations
        stamp = self.stamp(started_wall)
        self.metrics.scrapes.labels(target.service).inc()
        points: list[Point] = []
        increments: Increments | None = None
        error = ""
        try:
            fetched = await fetch(session, target, target.timeout or config.timeout,
                                  config.max_body_bytes, self.auth)
            # Off the loop: a large answer, or any answer of a target whose last one took
            # long (many new series: parsing a new series costs 100 times a known one).
            large = self._slow or len(fetched.text) >= (
                FIRST_OFF_LOOP_CHARS if self._slow is None else OFF_LOOP_CHARS)
            digest = time.perf_counter()
            since = self.deriver.last_wall
            steady = None if large or not self._counted(started) else self.steady.derive(
                fetched.text, fetched.openmetrics, config.max_samples, stamp, started,
                target.url)
            if steady is None:
                samples, derived = await self._digest(fetched, large, started, stamp)
            else:
                samples, derived = steady
            points, increments = derived.points, derived.increments
            self._slow = time.perf_counter() - digest > SLOW_DIGEST_S
            if derived.seconds is None:  # a baseline: counts stored from here
                status.covered_since = stamp
            elif status.covered_since is None:  # counting on from a saved state
                status.covered_since = since
            status.covered_until = stamp
            status.samples = samples
            status.warning = derived.warning
        except ScrapeError as exc:
            error = str(exc)
        except ExpositionError as exc:
            why = not_metrics(fetched.text)
            error = f"{why}: {exc}" if why else str(exc)
        except Exception as exc:  # a bug must not stop the loop
            log.exception("scrape of %s failed unexpectedly", target.service)
            error = f"internal error: {exc!r}"
        elapsed = time.perf_counter() - started
        self._record(error, started_wall, elapsed)
        points.append((schema.SCRAPES, {"service": target.service, "url": status.url,
                                        **target.labels},
                       {"up": 1.0 if not error else 0.0, "duration_ms": elapsed * 1000,
                        "samples": float(status.samples if not error else 0),
                        "last_error": error[:500]},
                       int(stamp * 1000)))
        await self.sink(target, points, started_wall, stamp, not error,
                        None if error else increments)
        return points

    async def _digest(self, fetched: Fetched, large: bool, started: float,
                      stamp: float) -> tuple[int, Derived]:
        """The usual parse and derive of an answer: (its samples, what it gives)."""
        read = functools.partial(parse_answer, fetched, self.deriver, self.config.max_samples)
        scraped = await self._off_loop(read) if large else read()
        count = not await self._twin_stored(started, stamp)
        derive, url = self.deriver.derive_all, self.target.url
        derived = await self._off_loop(derive, scraped, stamp, started, count, url) if (
            large) else derive(scraped, stamp, started, count, url)
        if not large:  # (a large answer never takes the steady scan: read in the thread)
            self.steady.arm(scraped, fetched.text)
        return len(scraped.samples), derived

    def _counted(self, started: float) -> bool:
        """Whether this scrape's interval is the target's own to count, known without
        asking the HA twin (``_twin_stored`` then says no at once)."""
        last = self.deriver.tracker.time
        return (self.twin_covers is None or (
            not self._resync and last is not None and started - last <= 1.5 * self.interval))

    async def _off_loop(self, work: Callable[..., T], *args: Any) -> T:
        """``work`` on a large answer, in the one thread kept for those: a target sending
        100,000s of (new) series would hold the event loop for seconds; in the thread, the
        interpreter hands the loop its turn every few milliseconds. One thread, so all
        large answers together take at most half of the loop's time."""
        self.busy = True  # (the deriver is the thread's until the work ends)
        try:
            return await asyncio.get_running_loop().run_in_executor(
                _large_answers(), functools.partial(work, *args))
        finally:
            self.busy = False

    async def _twin_stored(self, started: float, stamp: float) -> bool:
        """Whether the interval ending now spans missed slots that the HA twin stored
        (through the slot before this one, at least). After such a gap the next interval
        is left to the twin too: it begins at the late scrape, not at a slot, so its point
        would hold less than the twin's point of the same slot, and could overwrite it."""
        counted, since = self._counted(started), self.deriver.last_wall
        resync, self._resync = self._resync, False
        if (counted or since is None or self.deriver.tracker.time is None
                or self.twin_covers is None):
            return False
        stored = await self.twin_covers(self.target.service, self.status.url, since,
                                        stamp - self.interval)
        self._resync = stored and not resync
        return stored

    def _record(self, error: str, started_wall: float, elapsed: float) -> None:
        status, service = self.status, self.target.service
        if self.tally is not None:
            self.tally.recorded(status, not error)
        status.up = not error
        status.last_error = error
        # Counted with its outcome, not as it starts: /api/targets read during a scrape
        # shows the scrapes, failures and last scrape of the same moment.
        status.scrapes += 1
        status.last_scrape = started_wall
        status.duration_ms = elapsed * 1000
        if error:
            status.failures += 1
            self.metrics.failures.labels(service).inc()
            log.warning("scrape of %s (%s) failed: %s", service, status.url, error)
        self.metrics.duration.labels(service).observe(elapsed)
        self.metrics.samples.labels(service).set(status.samples if not error else 0)
        self.metrics.up.labels(service).set(1 if not error else 0)

    async def run(self, session: aiohttp.ClientSession, ready: asyncio.Event) -> None:
        """Scrape every interval until cancelled, keeping the phase when a scrape overruns."""
        interval = self.interval
        loop = asyncio.get_running_loop()
        # Wait for start-up work (bounded: InfluxDB may be down; then it starts anyway).
        try:
            await asyncio.wait_for(ready.wait(), timeout=interval)
        except TimeoutError:
            pass
        # Every scrape at the target's offset within the wall-clock interval: stable across
        # restarts and the same on every replica. The slot is fixed before sleeping, so a
        # busy loop at start-up delays one scrape, not the phase of all the later ones.
        next_at = loop.time() + (start_offset(self.target, interval) - time.time()) % interval
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            if self.hold():
                self.status.deferred += 1
                self.metrics.deferred.labels(self.target.service).inc()
            elif self.align and self.status.covered_until == self.stamp(time.time()):
                pass  # a late scrape took this slot already (one point per slot)
            else:
                await self.scrape_once(session)
            next_at += interval
            now = loop.time()
            if next_at < now:  # skip the missed slots, and count them
                skipped = int((now - next_at) // interval + 1)
                self.status.missed += skipped
                self.metrics.missed.labels(self.target.service).inc(skipped)
                next_at += skipped * interval
