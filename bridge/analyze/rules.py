"""Which limits apply to a figure: the global thresholds, then per-service and per-endpoint
overrides. Pure, no I/O.

An override names a service and an endpoint with shell wildcards (``ingest-*``,
``POST /ingest/*``); an endpoint pattern without a method matches the route alone
(``/api/reports/*`` matches every method). Overrides apply in order, later ones over
earlier ones, each replacing the fields it gives; ``None`` switches a figure off. An
override that names an endpoint never applies to the service-wide figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from . import schema
from .thresholds import Threshold

Changes = Mapping[str, object]  # Threshold field -> value


@dataclass(frozen=True)
class Override:
    service: str = "*"
    endpoint: str = "*"
    # metric -> the fields it replaces, or None: the figure is not judged here
    limits: Mapping[str, Changes | None] = field(default_factory=dict)

    def matches(self, service: str, endpoint: str) -> bool:
        if not fnmatchcase(service, self.service):
            return False
        if self.endpoint == "*":
            return True
        if endpoint == schema.ALL:
            return self.endpoint == schema.ALL
        if " " in self.endpoint:  # "GET /x*": method and route
            return fnmatchcase(endpoint, self.endpoint)
        return fnmatchcase(endpoint.partition(" ")[2] or endpoint, self.endpoint)


class RuleBook:
    """The threshold for (service, endpoint, metric), resolved once and remembered."""

    def __init__(self, base: Mapping[str, Threshold],
                 overrides: Sequence[Override] = ()) -> None:
        self.base = dict(base)
        self.overrides = list(overrides)
        self._cache: dict[tuple[str, str, str], Threshold | None] = {}

    def rule(self, service: str, endpoint: str, metric: str) -> Threshold | None:
        key = (service, endpoint, metric)
        try:
            return self._cache[key]
        except KeyError:
            pass
        rule = self.base.get(metric)
        for override in self.overrides:
            if metric in override.limits and override.matches(service, endpoint):
                changes = override.limits[metric]
                if changes is None:
                    rule = None
                else:
                    rule = _replace(rule or self.base.get(metric), metric, changes)
        if len(self._cache) > 200_000:
            self._cache.clear()  # endpoints come and go; never grows without bound
        self._cache[key] = rule
        return rule

    def lengths(self) -> set[float]:
        """Every window length a rule can ask for."""
        out = {t.window_seconds for t in self.base.values()}
        out |= {t.fast_window_seconds for t in self.base.values() if t.fast_window_seconds}
        for override in self.overrides:
            for changes in override.limits.values():
                if changes and "window_seconds" in changes:
                    out.add(float(changes["window_seconds"]))  # type: ignore[arg-type]
        return out


def _replace(rule: Threshold | None, metric: str, changes: Changes) -> Threshold | None:
    if rule is None:  # off in the base (a figure only some endpoints judge)
        if "warning" not in changes or "critical" not in changes:
            return None
        rule = Threshold(metric, 0.0, 0.0)
    values = {**rule.__dict__, **changes}
    return Threshold(**values)
