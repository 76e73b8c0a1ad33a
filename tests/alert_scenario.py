"""Alert scenario in compressed time: steady noisy traffic, then injected problems.

Two services render their /metrics with the exporter's own prometheus_client histogram;
the bridge's parser, deriver and evaluator judge every scrape, with the default rules;
derived points go to a real InfluxDB at their (past) times, and the regression baselines
come from it through the bridge's baseline job. Requests are random (Poisson arrivals);
time is simulated, so two hours run in seconds.

Timeline (minutes): 0-30 quiet; 30-40 ``GET /steady`` slows from p95 45 ms to 400 ms;
55-65 ``GET /errors`` fails 16 % instead of 3 %; 80-90 ``GET /report`` takes 600-800 ms
(p95 over the 500 ms limit), 90-100 1,100-1,300 ms (over the 1,000 ms critical level);
each followed by a recovery.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from promflux.bridge.analyze.alerts import Change, Evaluator
from promflux.bridge.analyze.derive import TargetDeriver
from promflux.bridge.analyze.rules import RuleBook
from promflux.bridge.analyze.thresholds import DEFAULTS, REGRESSION_DEFAULTS, Threshold
from promflux.bridge.ingest.exposition import parse
from promflux.bridge.store.storage import Storage
from promflux.exporter.metrics import ExporterMetrics

QUIET_END = 30 * 60
PROBLEMS = {  # name -> (start, end) in seconds
    "p95 45 -> 400 ms (regression)": (30 * 60, 40 * 60),
    "errors 3 % -> 16 %": (55 * 60, 65 * 60),
    "p95 600-800 ms (over 500)": (80 * 60, 90 * 60),
    "p95 1,100-1,300 ms (over 1,000)": (90 * 60, 100 * 60),
}
DURATION = 115 * 60


def _during(t: float, name: str) -> bool:
    start, end = PROBLEMS[name]
    return start <= t < end


def _poisson(rng: random.Random, mean: float) -> int:
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


@dataclass
class Route:
    method: str
    template: str
    per_second: float
    # (rng, t) -> (seconds, status)
    request: Callable[[random.Random, float], tuple[float, int]]


def _bimodal(rng: random.Random, t: float) -> tuple[float, int]:
    slow = rng.random() < 0.05
    return (rng.uniform(0.68, 0.72) if slow else rng.uniform(0.008, 0.012)), 200


def _errors(rng: random.Random, t: float) -> tuple[float, int]:
    share = 0.16 if _during(t, "errors 3 % -> 16 %") else 0.03
    return rng.uniform(0.02, 0.04), (500 if rng.random() < share else 200)


def _steady(rng: random.Random, t: float) -> tuple[float, int]:
    if _during(t, "p95 45 -> 400 ms (regression)"):
        return rng.uniform(0.2, 0.42), 200
    return rng.uniform(0.02, 0.047), 200


def _report(rng: random.Random, t: float) -> tuple[float, int]:
    if _during(t, "p95 600-800 ms (over 500)"):
        return rng.uniform(0.6, 0.8), 200
    if _during(t, "p95 1,100-1,300 ms (over 1,000)"):
        return rng.uniform(1.1, 1.3), 200
    return rng.uniform(0.08, 0.12), 200


def _ingest(rng: random.Random, t: float) -> tuple[float, int]:
    return rng.uniform(0.002, 0.006), 200


SERVICES: dict[str, list[Route]] = {
    "api": [Route("GET", "/bimodal", 2.0, _bimodal), Route("GET", "/errors", 2.0, _errors),
            Route("GET", "/steady", 2.0, _steady), Route("GET", "/report", 2.0, _report)],
    # An active service at about 17 requests per minute.
    "ingest": [Route("POST", "/ingest", 17.0 / 60.0, _ingest)],
}


@dataclass
class Service:
    name: str
    routes: list[Route]
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    metrics: ExporterMetrics | None = None
    deriver: TargetDeriver | None = None

    def __post_init__(self) -> None:
        self.metrics = ExporterMetrics(self.name, self.registry)
        self.deriver = TargetDeriver(self.name)

    def traffic(self, rng: random.Random, start: float, seconds: float) -> None:
        assert self.metrics is not None
        histogram = self.metrics.request_duration
        for route in self.routes:
            for _ in range(_poisson(rng, route.per_second * seconds)):
                latency, status = route.request(rng, start + rng.random() * seconds)
                histogram.labels(self.name, route.template, route.method,
                                 str(status)).observe(latency)


@dataclass
class Outcome:
    changes: list[Change]
    scrapes: int

    def quiet_changes(self, origin: float) -> list[Change]:
        return [c for c in self.changes if c.at - origin < QUIET_END]


def rules(window_s: float | None = None) -> RuleBook:
    """The bridge's default rules (optionally with another window)."""
    base: dict[str, Threshold] = {**DEFAULTS, **REGRESSION_DEFAULTS}
    if window_s is not None:
        import dataclasses
        base = {k: dataclasses.replace(v, window_seconds=window_s) for k, v in base.items()}
    return RuleBook(base)


class Scenario:
    """Drives the services and the evaluator; ``on_points`` receives each scrape's points
    (to write them), ``before_judging`` runs before each scrape is judged (baselines)."""

    def __init__(self, interval: float, origin: float, seed: int = 1) -> None:
        self.interval = interval
        self.origin = origin
        self.rng = random.Random(seed)
        self.services = [Service(name, routes) for name, routes in SERVICES.items()]
        self.evaluator = Evaluator(rules())

    def steps(self) -> int:
        return int(DURATION / self.interval)

    def scrape(self, step: int) -> list[tuple[str, list, list[Change]]]:
        """Traffic of one interval, then one scrape of every service."""
        t = step * self.interval
        out = []
        for service in self.services:
            assert service.deriver is not None
            if step:
                service.traffic(self.rng, t - self.interval, self.interval)
            text = generate_latest(service.registry).decode()
            derived = service.deriver.derive_all(parse(text, service.deriver.cache),
                                                 self.origin + t, t, target=service.name)
            points = derived.points
            changes = self.evaluator.observe(
                service.name, service.name, derived.increments, self.origin + t,
                active=service.name == "ingest")
            out.append((service.name, points, changes))
        return out


@dataclass
class Result:
    interval: float
    origin: float
    changes: list[Change]
    baselines_used: set[str]
    database: str = ""

    def at(self, change: Change) -> float:
        return change.at - self.origin

    def quiet(self) -> list[Change]:
        return [c for c in self.changes if self.at(c) < QUIET_END]

    def during(self, name: str) -> list[Change]:
        """The changes from the problem's start until the next problem starts."""
        start = PROBLEMS[name][0]
        later = [s for s, _ in PROBLEMS.values() if s > start]
        end = min(later) if later else DURATION
        return [c for c in self.changes if start <= self.at(c) < end]

    def delay(self, name: str, endpoint: str, metric: str, level: str) -> float | None:
        """Seconds from the problem's start to the first change of the key to ``level``."""
        for change in self.during(name):
            if (change.endpoint, change.metric, change.level) == (endpoint, metric, level):
                return self.at(change) - PROBLEMS[name][0]
        return None


async def run_with_influxdb(url: str, database: str, interval: float, seed: int = 1,
                            origin: float | None = None) -> Result:
    """The whole scenario, points written to InfluxDB at their times (in the past), the
    baselines refreshed from it every five simulated minutes by the bridge's own job."""
    import time

    from promflux.bridge.config import Retention
    from promflux.bridge.jobs.baselines import BaselineJob
    from promflux.bridge.store import rollups
    from promflux.bridge.store.influx import InfluxClient
    from promflux.bridge.store.lineprotocol import encode_points
    from promflux.bridge.store.setup import create_schema

    if origin is None:
        origin = time.time() - DURATION - 600
    scenario = Scenario(interval, origin, seed)
    client = InfluxClient(url, database)
    try:
        await create_schema(client, Retention())
        job = BaselineJob(Storage(client, database), scenario.evaluator, 300.0, 100.0)
        pending: list = []
        changes: list[Change] = []
        used: set[str] = set()
        per_refresh = int(300 / interval)
        for step in range(scenario.steps()):
            if step % per_refresh == 0 and step:
                await client.write(encode_points(pending), rollups.RAW)
                pending = []
                await job.refresh(origin + step * interval)
                used |= {b.source for b in scenario.evaluator.baselines.values()}
            for _, points, found in scenario.scrape(step):
                pending += points + [c.point() for c in found]
                changes += found
        await client.write(encode_points(pending), rollups.RAW)
    finally:
        await client.close()
    return Result(interval, origin, changes, used, database)
