"""Threshold states per service, endpoint and figure, evaluated on every scrape. Pure.

``figures`` picks the figures to check out of one scrape's derived points; ``Evaluator``
turns them into state changes (ok, warning, critical, back to ok). A new level must hold
for the threshold's ``for_seconds`` before the state changes (no flapping); with 0 it
changes on the first scrape that shows it. An interval with fewer than ``min_requests``
requests does not judge p95 or error rate (one slow request among two is no regression);
the state then stays as it was. States are restored from InfluxDB at start-up (``restore``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from . import schema
from .derive import Point
from .thresholds import SEVERITY, Level, Threshold

Key = tuple[str, str, str]  # service, endpoint ("_all" for service-wide), metric


@dataclass(frozen=True)
class Change:
    """A state change, as written to InfluxDB and posted to webhooks."""

    service: str
    endpoint: str
    metric: str
    level: Level
    previous: Level
    value: float
    threshold: float | None  # the bound crossed (None when back to ok)
    at: float

    @property
    def resolved(self) -> bool:
        return self.level == "ok"

    def as_json(self) -> dict[str, object]:
        return {"service": self.service, "endpoint": self.endpoint, "metric": self.metric,
                "level": self.level, "previous": self.previous, "value": self.value,
                "threshold": self.threshold, "at": self.at, "resolved": self.resolved}

    def point(self) -> Point:
        return (schema.STATES, {"service": self.service, "endpoint": self.endpoint,
                                "metric": self.metric},
                {"level": self.level, "previous": self.previous,
                 "severity": float(SEVERITY[self.level]), "value": self.value},
                int(self.at * 1000))


@dataclass
class State:
    level: Level = "ok"
    since: float = 0.0
    value: float | None = None
    pending: Level | None = None
    pending_since: float = 0.0


def figures(points: Iterable[Point], min_requests: float,
            active: bool) -> dict[tuple[str, str], float]:
    """(endpoint, metric) -> value for one scrape's points of one service."""
    out: dict[tuple[str, str], float] = {}
    cpu = memory = None
    for measurement, tags, fields, _ in points:
        if measurement == schema.PERFORMANCE:
            endpoint = tags.get("endpoint", schema.ALL)
            if endpoint != schema.ALL and tags.get("method"):
                endpoint = f"{tags['method']} {endpoint}"
            requests = fields.get("requests", 0.0)
            if isinstance(requests, int | float) and requests >= min_requests:
                for metric in ("p95_ms", "error_rate_percent", "client_error_rate_percent"):
                    value = fields.get(metric)
                    if isinstance(value, float):
                        out[(endpoint, metric)] = value
            if active and endpoint == schema.ALL:
                rpm = fields.get("requests_per_minute")
                if isinstance(rpm, float):
                    out[(schema.ALL, "requests_per_minute")] = rpm
        elif measurement == schema.RESOURCES:
            value = fields.get("cpu_percent")
            if isinstance(value, float):
                cpu = (cpu or 0.0) + value
            value = fields.get("memory_percent")
            if isinstance(value, float):
                memory = (memory or 0.0) + value
        elif measurement == schema.DISK:
            value = fields.get("used_percent")
            if isinstance(value, float):
                key = (schema.ALL, "disk_percent")
                out[key] = max(out.get(key, 0.0), value)
    if cpu is not None:
        out[(schema.ALL, "cpu_percent")] = cpu
    if memory is not None:
        out[(schema.ALL, "memory_percent")] = memory
    return out


@dataclass
class Evaluator:
    thresholds: Mapping[str, Threshold]
    states: dict[Key, State] = field(default_factory=dict)

    def evaluate(self, service: str, values: Mapping[tuple[str, str], float],
                 now: float) -> list[Change]:
        """Feed one scrape's figures of ``service``; returns the state changes."""
        changes = []
        for (endpoint, metric), value in values.items():
            threshold = self.thresholds.get(metric)
            if threshold is None:
                continue
            key = (service, endpoint, metric)
            state = self.states.get(key)
            if state is None:
                state = self.states[key] = State(since=now)
            state.value = value
            level = threshold.level(value)
            if level == state.level:
                state.pending = None
                continue
            if state.pending != level:
                state.pending, state.pending_since = level, now
            if now - state.pending_since < threshold.for_seconds:
                continue
            changes.append(Change(service, endpoint, metric, level, state.level, value,
                                  threshold.bound(level), now))
            state.level, state.since, state.pending = level, now, None
        return changes

    def restore(self, key: Key, level: Level, since: float, value: float | None) -> None:
        """Take up a state stored before a restart (so a breach that goes on is not
        announced again). States already seen since the start win."""
        if key not in self.states and level in SEVERITY:
            self.states[key] = State(level=level, since=since, value=value)

    def snapshot(self) -> list[tuple[Key, State]]:
        """Every tracked state, worst first."""
        return sorted(self.states.items(), key=lambda kv: (-SEVERITY[kv[1].level], kv[0]))
