"""/api/status and the status page on a real aiohttp server over a real evaluator: every
figure with the limit that applies (ok or not, overrides included), regressions with their
baseline."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry
from promflux.bridge.analyze.alerts import Evaluator, Key, State
from promflux.bridge.analyze.regression import Baseline
from promflux.bridge.analyze.rules import Override, RuleBook
from promflux.bridge.analyze.thresholds import DEFAULTS, REGRESSION_DEFAULTS
from promflux.bridge.analyze.window import Counts, Increments
from promflux.bridge.ingest.loop import TargetStatus
from promflux.bridge.serve.http import BridgeHandlers
from promflux.bridge.store.influx import InfluxClient
from promflux.bridge.store.storage import Storage

from .conftest import free_port


def counts(fast: float, slow: float, errors: float = 0.0) -> Counts:
    total = fast + slow
    return Counts(total, errors, 0.0, {0.025: fast, 0.05: fast, 0.5: total, math.inf: total})


class View:
    """What the handlers read of a bridge: a real evaluator and InfluxDB (an empty one)."""

    def __init__(self, evaluator: Evaluator, client: InfluxClient) -> None:
        self.registry = CollectorRegistry()
        self.storage = Storage(client, client.database)
        self.book = evaluator.book
        self.thresholds = evaluator.book.base
        self.evaluator = evaluator

    @property
    def statuses(self) -> Sequence[TargetStatus]:
        status = TargetStatus("api", "http://127.0.0.1:1/metrics")
        status.up = True
        return [status]

    def states(self) -> list[tuple[Key, State]]:
        return self.evaluator.snapshot()

    def health(self) -> dict[str, Any]:
        return {}


def test_status_shows_limits_and_regressions(influxdb):
    rule = {**DEFAULTS, **REGRESSION_DEFAULTS}
    book = RuleBook({k: _instant(v) for k, v in rule.items()},
                    [Override(endpoint="/slow", limits={"p95_ms": {"warning": 2000.0,
                                                                   "critical": 4000.0}}),
                     Override(endpoint="/quiet", limits={"p95_ms": None})])
    evaluator = Evaluator(book)
    evaluator.baselines[("api", "GET /items")] = Baseline(counts(1000, 0), "previous hour")
    scrape = {"GET /items": counts(100, 60), "GET /slow": counts(0, 50),
              "GET /quiet": counts(0, 50)}
    evaluator.observe("api", "t", Increments("t", 60.0, scrape), 1000.0)

    async def fetch() -> tuple[dict[str, Any], str]:
        port = free_port()
        client = InfluxClient(influxdb.url, "status_api")
        runner = web.AppRunner(BridgeHandlers(View(evaluator, client), 15.0).app())
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{port}/api/status") as r:
                    status = await r.json()
                async with session.get(f"http://127.0.0.1:{port}/?part=main") as r:
                    page = await r.text()
            return status, page
        finally:
            await runner.cleanup()
            await client.close()

    status, page = asyncio.run(fetch())
    states = {(s["endpoint"], s["metric"]): s for s in status["services"]["api"]["states"]}
    items = states[("GET /items", "p95_ms")]
    assert items["level"] == "ok" and items["threshold"] == 500.0  # ok, limit shown
    assert items["limit"]["window"] == 60.0 and items["limit"]["critical"] == 1000.0
    slow = states[("GET /slow", "p95_ms")]
    assert slow["limit"]["warning"] == 2000.0 and slow["level"] == "ok"  # the override
    assert ("GET /quiet", "p95_ms") not in states  # switched off there
    regression = states[("GET /items", "p95_regression")]
    assert regression["level"] == "regression"
    assert regression["baseline"] is not None and regression["baseline"] < 50.0
    assert regression["value"] > 50.0 and regression["limit"]["ratio"] == 1.5
    assert status["services"]["api"]["level"] == "regression"  # the worst of its states
    assert 'data-level="regression"' in page and "baseline " in page


def _instant(rule):
    import dataclasses
    return dataclasses.replace(rule, window_seconds=60.0, for_seconds=0.0, resolve_seconds=0.0)
