"""A new configuration applied to the running bridge (SIGHUP, ``POST /-/reload``).

Targets, discovery, the shard and thresholds change live: unchanged targets keep their
loops, rate state, windows and alert states. Sections that open connections, files or
sockets (InfluxDB, buffer, listen address, webhooks, Alertmanager, HA, scrape defaults)
keep their running values until a restart, and the reload says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from .analyze.rule_book import rule_book
from .analyze.rules import RuleBook
from .config import BridgeConfig


class Running(Protocol):
    """What a reload changes in the running bridge (``app.Bridge``)."""

    config: BridgeConfig

    @property
    def targets(self) -> Any: ...  # its ``use(config)`` takes up targets and discovery

    @property
    def scrapers(self) -> Sequence[Any]: ...

    def use_rules(self, book: RuleBook) -> None: ...

AT_RESTART = ("influxdb", "scrape", "buffer", "retention", "listen", "ha", "webhooks",
              "alertmanagers", "log_level")


def needs_restart(old: BridgeConfig, new: BridgeConfig) -> list[str]:
    """The sections that differ and only take effect at a restart."""
    return [name for name in AT_RESTART if getattr(old, name) != getattr(new, name)]


async def apply_config(bridge: Running, config: BridgeConfig) -> list[str]:
    """Apply what can change live; returns what changed, in words."""
    changes = []
    later = needs_restart(bridge.config, config)
    if later:
        config = config.model_copy(update={name: getattr(bridge.config, name)
                                           for name in later})
        changes.append("kept until a restart: " + ", ".join(later))
    if config.thresholds != bridge.config.thresholds:
        bridge.use_rules(rule_book(config))
        changes.append("thresholds")
    before = {(s.target.service, s.target.url) for s in bridge.scrapers}
    bridge.config = config
    await bridge.targets.use(config)
    after = {(s.target.service, s.target.url) for s in bridge.scrapers}
    if before != after:
        changes.append(f"targets: {len(after - before)} added, {len(before - after)} removed, "
                       f"{len(after)} in all")
    return changes
