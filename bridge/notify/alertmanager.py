"""Alerts to Prometheus Alertmanager's v2 API (``POST /api/v2/alerts``).

Alertmanager expects what Prometheus does: every active alert re-sent on an interval with
``endsAt`` a few intervals ahead (so an alert whose sender died resolves on its own), and
a resolved alert sent with ``endsAt`` at the time it resolved, repeated for a while in
case one send is lost. Grouping, silences, inhibition and routing are then Alertmanager's.
An alert is one (service, endpoint, metric, severity): a warning that becomes critical
resolves the warning alert and fires a critical one, as two Prometheus rules would.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry, Counter

from ..analyze.alerts import Change, Key
from ..auth import bearer_headers
from ..bodies import error_text
from ..config import Alertmanager, ConfigError
from ..redact import redact
from ..tls import ssl_context

log = logging.getLogger("promflux.bridge.alertmanager")
RESOLVED_KEPT_S = 15 * 60  # resolved alerts are re-sent this long (as Prometheus does)
LabelSet = tuple[tuple[str, str], ...]


def severity(level: str) -> str:
    return "warning" if level == "regression" else level


def labels(service: str, endpoint: str, metric: str, level: str) -> dict[str, str]:
    return {"alertname": f"promflux_{metric}", "service": service, "endpoint": endpoint,
            "metric": metric, "severity": severity(level)}


def _time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")


def describe(change: Change) -> dict[str, str]:
    text = {"value": "no data" if change.no_data else f"{change.value:.6g}"}
    if change.threshold is not None:
        text["limit"] = f"{change.threshold:.6g}"
    if change.baseline is not None:
        text["baseline"] = f"{change.baseline:.6g}"
    detail = (f"limit {text['limit']}" if "limit" in text
              else f"baseline {text.get('baseline', '?')}")
    text["summary"] = (f"{change.service} {change.endpoint} {change.metric} is "
                       f"{change.level}: {text['value']} ({detail})")
    return text


class AlertmanagerSender:
    def __init__(self, targets: list[Alertmanager], registry: CollectorRegistry,
                 clock: Callable[[], float] = time.time) -> None:
        self.targets = targets
        self.clock = clock
        self.active: dict[LabelSet, dict[str, Any]] = {}
        self.resolved: dict[LabelSet, tuple[dict[str, Any], float]] = {}
        self.sent = Counter("promflux_bridge_alertmanager_sent", "Alert batches delivered.",
                            ["url"], registry=registry)
        self.failed = Counter("promflux_bridge_alertmanager_failed",
                              "Alert batches Alertmanager did not take.", ["url"],
                              registry=registry)
        self._wake = asyncio.Event()
        self._auth = {id(t): bearer_headers(t.bearer_token) for t in targets}
        self.skipped = Counter(
            "promflux_bridge_alertmanager_skipped",
            "Alert batches not posted because the last one was still in flight (the next "
            "batch holds every active alert again).", ["url"], registry=registry)

    def notify(self, change: Change) -> None:
        if not self.targets:
            return
        if change.previous != "ok":
            key = self._key(change.service, change.endpoint, change.metric, change.previous)
            alert = self.active.pop(key, None)
            if alert is not None:
                self.resolved[key] = ({**alert, "endsAt": _time(change.at)}, change.at)
        if change.level != "ok":
            key = self._key(change.service, change.endpoint, change.metric, change.level)
            self.resolved.pop(key, None)
            self.active[key] = {"labels": dict(key), "annotations": describe(change),
                                "startsAt": _time(change.at)}
        self._wake.set()

    def restore(self, key: Key, level: str, since: float, value: float | None) -> None:
        """A state still bad after a restart: active again, with its first start time."""
        if self.targets and level != "ok":
            found = self._key(*key, level)
            self.active.setdefault(found, {"labels": dict(found), "startsAt": _time(since),
                                           "annotations": {"value": f"{value}"}})

    @staticmethod
    def _key(service: str, endpoint: str, metric: str, level: str) -> LabelSet:
        return tuple(sorted(labels(service, endpoint, metric, level).items()))

    def batch(self, resend_s: float) -> list[dict[str, Any]]:
        """What to post now: active alerts valid for four resend intervals, and the
        recently resolved ones."""
        now = self.clock()
        self.resolved = {k: v for k, v in self.resolved.items()
                         if now - v[1] <= RESOLVED_KEPT_S}
        ends = _time(now + 4 * resend_s)
        return ([{**a, "endsAt": ends} for a in self.active.values()]
                + [a for a, _ in self.resolved.values()])

    async def run(self) -> None:
        if not self.targets:
            return
        resend = min(t.resend_interval for t in self.targets)
        # One post in flight per Alertmanager: a slow or hanging one skips the batches sent
        # while it is busy (each batch holds every active alert, so nothing is lost) and
        # never delays the others.
        posting: dict[int, asyncio.Task[None]] = {}
        async with aiohttp.ClientSession() as session:
            try:
                while True:
                    try:
                        await asyncio.wait_for(self._wake.wait(), timeout=resend)
                    except TimeoutError:
                        pass
                    self._wake.clear()
                    alerts = self.batch(resend)
                    for i, target in enumerate(self.targets):
                        if not alerts:
                            continue
                        if i in posting and not posting[i].done():
                            self.skipped.labels(redact(target.url)).inc()
                            continue
                        posting[i] = asyncio.create_task(self._post(session, target, alerts))
            finally:
                for task in posting.values():
                    task.cancel()

    async def _post(self, session: aiohttp.ClientSession, target: Alertmanager,
                    alerts: list[dict[str, Any]]) -> None:
        url = target.url + "/api/v2/alerts"
        try:
            headers = self._auth[id(target)].headers()
            async with session.post(url, json=alerts, headers=headers,
                                    ssl=ssl_context(target.tls),
                                    timeout=aiohttp.ClientTimeout(total=target.timeout)) as r:
                if r.status < 300:
                    self.sent.labels(redact(target.url)).inc()
                    return
                error = f"HTTP {r.status}: {await error_text(r)}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = repr(exc)
        except ConfigError as exc:  # its bearer token cannot be read
            error = str(exc)
        self.failed.labels(redact(target.url)).inc()
        # The next cycle sends every active alert again: nothing is lost by waiting.
        log.warning("alertmanager %s: %d alerts not delivered: %s", redact(target.url),
                    len(alerts), error)
