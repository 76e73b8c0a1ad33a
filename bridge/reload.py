"""A new configuration applied to the running bridge (SIGHUP, ``POST /-/reload``).

Targets, discovery, the shard and thresholds change live: unchanged targets keep their
loops, rate state, windows and alert states. Sections that open connections, files or
sockets (InfluxDB, buffer, listen address, webhooks, Alertmanager, HA, scrape defaults)
keep their running values until a restart, and the reload says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import BridgeConfig, rule_book

if TYPE_CHECKING:
    from .app import Bridge

AT_RESTART = ("influxdb", "scrape", "buffer", "retention", "listen", "ha", "webhooks",
              "alertmanagers", "log_level")


def needs_restart(old: BridgeConfig, new: BridgeConfig) -> list[str]:
    """The sections that differ and only take effect at a restart."""
    return [name for name in AT_RESTART if getattr(old, name) != getattr(new, name)]


async def apply_config(bridge: Bridge, config: BridgeConfig) -> list[str]:
    """Apply what can change live; returns what changed, in words."""
    changes = []
    later = needs_restart(bridge.config, config)
    if later:
        config = config.model_copy(update={name: getattr(bridge.config, name)
                                           for name in later})
        changes.append("kept until a restart: " + ", ".join(later))
    if config.thresholds != bridge.config.thresholds:
        book = rule_book(config)
        bridge.book, bridge.thresholds = book, book.base
        bridge.evaluator.book = book
        changes.append("thresholds")
    before = {(s.target.service, s.target.url) for s in bridge.scrapers}
    bridge.config = config
    await bridge.targets.use(config)
    after = {(s.target.service, s.target.url) for s in bridge.scrapers}
    if before != after:
        changes.append(f"targets: {len(after - before)} added, {len(before - after)} removed, "
                       f"{len(after)} in all")
    return changes
