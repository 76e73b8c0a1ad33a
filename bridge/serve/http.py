"""The bridge's own HTTP endpoints: status page, APIs, /metrics, /healthz, browser timings.

Handlers read what the rest of the bridge knows through ``BridgeView`` and never change
it; they are thin: the page is rendered by ``status_page``, the figures by ``overview``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from ..analyze import overview, range_percentiles
from ..analyze.alerts import Key, State
from ..analyze.rules import RuleBook
from ..analyze.schema import ALL
from ..analyze.thresholds import REGRESSIONS, Threshold, worst
from ..config import ConfigError
from ..ingest.loop import TargetStatus
from ..store.influx import InfluxError
from ..store.pair import PairStore
from ..store.storage import Storage
from . import endpoint_page, status_page
from .browser_timings import ClientTimings


def _fetch_script() -> bytes:
    """promflux-fetch.js, a file of the exporter package (same distribution). Located with
    find_spec, which does not import it: the bridge never runs exporter code."""
    spec = importlib.util.find_spec("promflux.exporter")
    if spec is None or not spec.submodule_search_locations:
        return b"/* promflux-fetch.js not installed */"
    return (Path(next(iter(spec.submodule_search_locations))) / "static"
            / "promflux-fetch.js").read_bytes()


SCRIPT = _fetch_script()


class BridgeView(Protocol):
    """What the handlers read of the running bridge."""

    registry: CollectorRegistry
    storage: Storage
    thresholds: dict[str, Threshold]
    book: RuleBook
    pair: PairStore

    @property
    def statuses(self) -> Sequence[TargetStatus]: ...

    def states(self) -> list[tuple[Key, State]]: ...

    def health(self) -> dict[str, Any]: ...

    async def reload(self) -> list[str]: ...


class BridgeHandlers:
    """The bridge's aiohttp routes."""

    def __init__(self, bridge: BridgeView, refresh_s: float) -> None:
        self.bridge = bridge
        self.refresh_s = refresh_s
        self.client_timings = ClientTimings(bridge.registry)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1024**2)
        app.router.add_get("/", self.index)
        app.router.add_get("/static/promflux-fetch.js", self.script)
        app.router.add_post("/api/client-timings", self.record_client_timings)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/api/targets", self.api_targets)
        app.router.add_get("/api/status", self.api_status)
        app.router.add_get("/api/percentiles", self.api_percentiles)
        app.router.add_get("/api/coverage", self.api_coverage)
        app.router.add_post("/-/reload", self.reload)
        app.router.add_get("/endpoint", self.endpoint)
        return app

    async def reload(self, request: web.Request) -> web.Response:
        """Read the configuration file again (as SIGHUP does): 200 with what changed, or
        400 with why the new one was refused (the old one keeps running)."""
        try:
            changes = await self.bridge.reload()
        except ConfigError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"changes": changes})

    async def index(self, request: web.Request) -> web.Response:
        """The status page; ``?part=main`` is its refreshed content alone."""
        bridge = self.bridge
        targets = [status_page.TargetRow(t.service, t.url, t.up, t.last_scrape, t.duration_ms,
                                         t.samples, t.last_error) for t in bridge.statuses]
        figures: dict[str, overview.ServiceFigures] = {}
        changes: list[overview.StateChange] = []
        endpoints: dict[str, list[overview.EndpointFigures]] = {}
        jobs: dict[str, list[overview.JobFigures]] = {}
        counts: dict[str, dict[str, list[overview.CountRow]]] = {}
        influx_error = ""
        try:
            results = await asyncio.wait_for(bridge.storage.overview(), timeout=5)
            figures, changes = overview.reduce(results), overview.recent_changes(results)
            endpoints, jobs = overview.endpoints(results), overview.jobs(results)
            counts = {"messages": overview.counted(results, "messages", "kind"),
                      "closes": overview.counted(results, "closes", "code"),
                      "browser": overview.counted(results, "browser", "method")}
        except (TimeoutError, InfluxError) as exc:
            influx_error = str(exc) or "no answer within 5 s"
        states = [status_page.StateRow(service, endpoint, metric, state.level, state.value,
                                       state.since, _limit_text(metric, state))
                  for (service, endpoint, metric), state in bridge.states()
                  if state.level != "ok"]
        main = status_page.render_main(targets, figures, states, health=bridge.health(),
                                       thresholds=bridge.thresholds,
                                       influx_error=influx_error, changes=changes,
                                       endpoints=endpoints, jobs=jobs, counts=counts,
                                       fresh_s=max(3 * self.refresh_s, 30.0))
        if request.query.get("part") == "main":
            return web.Response(text=main, content_type="text/html")
        return web.Response(text=status_page.render_page(main, self.refresh_s),
                            content_type="text/html")

    async def api_status(self, request: web.Request) -> web.Response:
        """Current threshold states: per service the worst level, and every tracked state."""
        services: dict[str, dict[str, Any]] = {
            t.service: {"level": "ok", "up": t.up, "states": []} for t in self.bridge.statuses}
        for (service, endpoint, metric), state in self.bridge.states():
            entry = services.setdefault(service, {"level": "ok", "up": False, "states": []})
            rule = state.rule or self.bridge.book.rule(service, endpoint, metric)
            row = {"endpoint": endpoint, "metric": metric, "level": state.level,
                   "value": _number(state.value), "since": state.since,
                   "at": state.at,  # the value is the figure over the window up to then
                   # the bound crossed; for an ok state the limit that applies
                   "threshold": None if rule is None or metric in REGRESSIONS
                   else rule.bound(state.level) or rule.warning,
                   "limit": None if rule is None else rule.as_json()}
            if metric in REGRESSIONS:
                row["baseline"] = _number(state.baseline)
            entry["states"].append(row)
            entry["level"] = worst([entry["level"], state.level])
        for entry in services.values():
            if not entry["up"]:
                entry["level"] = "critical"  # a target that cannot be scraped is down
        return web.json_response({"services": services, "generated_at": time.time()})

    async def api_percentiles(self, request: web.Request) -> web.Response:
        """Exact p50/p90/p95/p99 of one endpoint (or the whole service) over any range:
        ``?service=S&endpoint=E&method=M&start=T1&end=T2`` (times RFC 3339 or epoch
        seconds; endpoint and method optional)."""
        q = request.query
        try:
            if "start" not in q or "end" not in q:
                raise range_percentiles.RangeError("start and end are required")
            service = q.get("service", "")
            start = range_percentiles.parse_time(q["start"])
            end = range_percentiles.parse_time(q["end"])
            range_percentiles.check(service, start, end)
        except range_percentiles.RangeError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        try:
            buckets = await asyncio.wait_for(self.bridge.storage.range_buckets(
                service, q.get("endpoint"), q.get("method"), start, end), timeout=10)
        except (TimeoutError, InfluxError) as exc:
            return web.json_response({"error": f"InfluxDB: {exc}"}, status=503)
        return web.json_response(range_percentiles.answer(buckets))

    async def endpoint(self, request: web.Request) -> web.Response:
        """One endpoint over a range (``?service=&endpoint=&method=&range=1h``): exact
        percentiles and counts, and its alert history."""
        q = request.query
        service, route, method = q.get("service", ""), q.get("endpoint", ""), q.get("method", "")
        range_ = q.get("range", "1h")
        if not service or not route or range_ not in endpoint_page.RANGES:
            return web.Response(status=400, text="give service, endpoint, method and a range "
                                f"of {', '.join(endpoint_page.RANGES)}\n")
        end = time.time()
        start = end - endpoint_page.RANGES[range_]
        key = f"{method} {route}" if method and route != ALL else route
        figures, changes, error = None, [], ""
        try:
            buckets, changes = await asyncio.wait_for(asyncio.gather(
                self.bridge.storage.range_buckets(service, route, method or None, start, end),
                self.bridge.storage.state_changes(service, key, start, end)), timeout=10)
            figures = range_percentiles.answer(buckets)
        except (TimeoutError, InfluxError) as exc:
            error = str(exc) or "no answer within 10 s"
        main = endpoint_page.render_endpoint(
            service, route, method, range_, figures, changes, end=end, error=error,
            p95_rule=self.bridge.book.rule(service, key, "p95_ms"))
        return web.Response(text=endpoint_page.render_document(
            f"{service} {key}", main, status_page.STYLE), content_type="text/html")

    async def script(self, request: web.Request) -> web.Response:
        return web.Response(body=SCRIPT, content_type="text/javascript", charset="utf-8",
                            headers={"Cache-Control": "max-age=3600"})

    async def record_client_timings(self, request: web.Request) -> web.Response:
        body = await request.read()  # the whole body (bounded by client_max_size)
        status, text = self.client_timings.record(body)
        return web.Response(status=status, text=text or None)

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.bridge.registry),
                            headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})

    async def healthz(self, request: web.Request) -> web.Response:
        """200 when healthy, 503 when degraded (the body says why either way)."""
        health = self.bridge.health()
        return web.json_response(health, status=200 if health["status"] == "ok" else 503)

    async def api_coverage(self, request: web.Request) -> web.Response:
        """Since which slot, up to which, this replica has stored every interval of its
        targets (its HA twin asks): all of them, or one with ``?service=&url=`` (the url as
        /api/targets shows it)."""
        service, url = request.query.get("service"), request.query.get("url")
        rows = []
        for t in self.bridge.statuses:
            if service is None or (t.service == service and t.url == url):
                since, until = self.bridge.pair.coverage(
                    (t.service, t.url), (t.covered_since, t.covered_until))
                rows.append({"service": t.service, "url": t.url, "covered_since": since,
                             "covered_until": until})
        if service is None:
            return web.json_response({"role": self.bridge.pair.role, "targets": rows})
        if rows:
            return web.json_response(rows[0])
        return web.json_response({"error": "no such target"}, status=404)

    async def api_targets(self, request: web.Request) -> web.Response:
        rows: list[dict[str, Any]] = [
            {"service": t.service, "url": t.url, "up": t.up, "last_scrape": t.last_scrape,
             "duration_ms": t.duration_ms, "samples": t.samples, "last_error": t.last_error,
             "scrapes": t.scrapes, "failures": t.failures, "deferred": t.deferred,
             "missed": t.missed, "warning": t.warning, "labels": t.labels}
            for t in self.bridge.statuses]
        return web.Response(text=json.dumps(rows), content_type="application/json")


def _number(value: float | None) -> float | None:
    """JSON has no NaN: a figure without a value is null."""
    return None if value is None or value != value else value


def _limit_text(metric: str, state: State) -> str:
    """What the value is judged against, for the page: "limit 500 (critical 1000) over
    5 min", or "baseline 48.2 (previous hour)" for a regression."""
    rule = state.rule
    if metric in REGRESSIONS:
        return "" if state.baseline is None else f"baseline {state.baseline:,.1f}"
    if rule is None:
        return ""
    window = f" over {rule.window_seconds / 60:g} min" if metric not in _INSTANT else ""
    return f"limit {rule.warning:g} (critical {rule.critical:g}){window}"


_INSTANT = frozenset({"up", "memory_percent", "disk_percent", "job_stale_seconds"})  # as last seen
