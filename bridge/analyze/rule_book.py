"""The configured thresholds as a rule book: the settings' limits and overrides turned into
``Threshold`` objects and ``Override`` changes. Pure, no I/O.

It reads the settings by attribute (``Settings`` names what it uses), so this package
never imports the configuration module: settings sit above the pure figures."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol

from .rules import Override, RuleBook
from .thresholds import DEFAULTS, REGRESSION_DEFAULTS, Threshold

# Every figure an override may set or switch off.
OVERRIDABLE = ("p95_ms", "error_rate_percent", "client_error_rate_percent", "cpu_percent",
               "memory_percent", "disk_percent", "requests_per_minute", "p95_regression",
               "error_rate_regression", "job_failure_percent", "job_stale_seconds")


class _Section(Protocol):
    @property
    def overrides(self) -> Sequence[Any]: ...
    @property
    def regression(self) -> Any: ...
    @property
    def down_for(self) -> float: ...
    @property
    def min_requests(self) -> int | None: ...


class Settings(Protocol):
    """What the rule book reads of the bridge's settings."""

    @property
    def thresholds(self) -> _Section: ...


def _fields(limit: Any) -> dict[str, Any]:
    """A config limit as ``Threshold`` field changes (only what it sets)."""
    names = {"warning": "warning", "critical": "critical", "for_": "for_seconds",
             "window": "window_seconds", "resolve": "resolve_seconds",
             "min_requests": "min_requests", "ratio": "ratio", "alpha": "alpha"}
    out = {}
    for name, field_name in names.items():
        value = getattr(limit, name, None)
        if value is not None:
            out[field_name] = float(value)
    return out


REQUEST_RATIOS = ("p95_ms", "error_rate_percent", "client_error_rate_percent")
# Figures judged only when configured, with the defaults they then take.
OPTIONAL = {
    "client_error_rate_percent": dataclasses.replace(DEFAULTS["error_rate_percent"],
                                                     metric="client_error_rate_percent"),
    "job_stale_seconds": dataclasses.replace(DEFAULTS["cpu_percent"],
                                             metric="job_stale_seconds"),
}


def thresholds_of(config: Settings) -> dict[str, Threshold]:
    """The configured global limits as ``Threshold`` objects (direction and scope from
    DEFAULTS; window, for, resolve and min_requests from the figure, else the section)."""
    section = config.thresholds
    common = {k: v for k, v in _fields(section).items()
              if k in ("window_seconds", "for_seconds", "resolve_seconds", "alpha")}
    out = {}
    limits: dict[str, Any] = {m: getattr(section, m) for m in DEFAULTS}
    for optional in ("client_error_rate_percent", "job_stale_seconds"):
        if getattr(section, optional) is not None:
            limits[optional] = getattr(section, optional)
    for metric, limit in limits.items():
        default = DEFAULTS.get(metric) or OPTIONAL[metric]
        changes = {**common, **_fields(limit)}
        if section.min_requests is not None and "min_requests" not in _fields(limit) \
                and metric in REQUEST_RATIOS:
            changes["min_requests"] = float(section.min_requests)
        out[metric] = dataclasses.replace(default, **changes)
    regression = section.regression
    if regression.enabled:
        for metric, default in REGRESSION_DEFAULTS.items():
            changes = {**common, **_fields(regression)}
            changes.update(min_baseline=float(regression.min_baseline_requests))
            if metric == "error_rate_regression":
                changes["min_increase"] = regression.min_error_increase
            out[metric] = dataclasses.replace(default, **changes)
    # 1 when a scrape works, 0 when it fails: critical at 0, no warning level.
    out["up"] = Threshold("up", 0.5, 0.5, above=False, for_seconds=section.down_for)
    return out


def rule_book(config: Settings) -> RuleBook:
    """The global limits and the overrides, in order."""
    overrides = []
    for given in config.thresholds.overrides:
        limits: dict[str, dict[str, object] | None] = {}
        for metric in OVERRIDABLE:
            value = getattr(given, metric, None)
            if value is False:
                limits[metric] = None
            elif value is not None:
                limits[metric] = dict(_fields(value))
        overrides.append(Override(given.service, given.endpoint, limits))
    return RuleBook(thresholds_of(config), overrides)
