"""``python -m promflux.bridge --config bridge.yml`` (or ``promflux-bridge``)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import BridgeConfig


def tune_gc() -> None:
    """The bridge's garbage is freed by reference counts; the cycle collector, run every
    700 allocations by default, spent about 15 % of its CPU per scraped sample walking the
    same long-lived caches (docs/performance.md). Imported modules are frozen out of it
    and it runs every 50,000 allocations."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 1000)


def version_text() -> str:
    """The version, which core runs the per-sample hot path, which event loop and which
    zlib inflates the targets' answers."""
    from promflux import __version__

    from .event_loop import loop_factory
    from .inflate import fastest_zlib
    from .native import CORE

    return (f"promflux-bridge {__version__} (core: {CORE}; event loop: {loop_factory()[1]}; "
            f"inflate: {fastest_zlib()[1]})")


class _Version(argparse.Action):
    """--version, printed on one line (argparse's own wraps it at the terminal's width)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        print(version_text())
        parser.exit()


def main(argv: list[str] | None = None) -> int:
    """Run the bridge; exit code 2 for an invalid configuration."""
    parser = argparse.ArgumentParser(prog="promflux-bridge", description=(
        "Scrape Prometheus /metrics and write percentiles and rates to InfluxDB."))
    parser.add_argument("--version", action=_Version, nargs=0,
                        help="say the version, the core, the event loop and the zlib, and exit")
    parser.add_argument("--config", required=True, help="YAML configuration file")
    parser.add_argument("--check-config", action="store_true",
                        help="validate the configuration and exit")
    parser.add_argument("--backfill", nargs="+", metavar=("FROM", "TO"),
                        help="roll up and compute trends for a past range (ISO 8601 times, "
                             "TO defaults to now), then exit")
    args = parser.parse_args(argv)  # (--help works without the bridge's dependencies)
    try:
        from .config import ConfigError, load, unreadable_secrets
        from .redact import redact
    except ModuleNotFoundError as exc:
        print(f"promflux-bridge: the bridge's dependencies are not installed (no module "
              f"{exc.name}): pip install 'promflux[bridge]'", file=sys.stderr)
        return 2
    try:
        config = load(args.config)
    except ConfigError as exc:
        print(f"promflux-bridge: invalid configuration: {exc}", file=sys.stderr)
        return 2
    if args.check_config:
        problems = unreadable_secrets(config)
        for problem in problems:
            print(f"promflux-bridge: {args.config}: {problem}", file=sys.stderr)
        if problems:
            return 2
        print(f"{args.config}: OK ({len(config.targets)} static targets, "
              f"{len(config.file_sd_configs) + len(config.http_sd_configs)} discovery "
              f"sources, InfluxDB "
              f"{redact(config.influxdb.url)} database {config.influxdb.database})")
        return 0
    logging.basicConfig(level=config.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.backfill:
        return _backfill(config, args.backfill)
    from .app import Bridge, ListenError
    from .event_loop import loop_factory
    from .inflate import use_fastest_zlib
    from .native import CORE

    tune_gc()

    async def run() -> None:
        bridge = Bridge(config, Path(args.config))
        task = asyncio.create_task(bridge.run())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        loop.add_signal_handler(signal.SIGHUP, _reload, bridge)
        try:
            await task
        except asyncio.CancelledError:
            pass

    factory, loop_name = loop_factory()
    logging.getLogger("promflux.bridge").info("event loop: %s; core: %s; inflate: %s",
                                              loop_name, CORE, use_fastest_zlib())
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(run())
    except ConfigError as exc:  # a secret that cannot be read
        print(f"promflux-bridge: invalid configuration: {exc}", file=sys.stderr)
        return 2
    except ListenError as exc:
        print(f"promflux-bridge: {exc}", file=sys.stderr)
        return 1
    return 0


def _reload(bridge: Any) -> None:
    """SIGHUP: read the configuration again (a refused one is logged by ``reload``)."""
    task = asyncio.create_task(bridge.reload(), name="reload")
    _RELOADS.add(task)  # (the loop keeps only a weak reference to a task)
    task.add_done_callback(_reloaded)


_RELOADS: set[asyncio.Task[Any]] = set()


def _reloaded(task: asyncio.Task[Any]) -> None:
    from .config import ConfigError

    _RELOADS.discard(task)
    error = None if task.cancelled() else task.exception()
    if error is not None and not isinstance(error, ConfigError):
        logging.getLogger("promflux.bridge").error("configuration reload failed",
                                                   exc_info=error)


def _timestamp(text: str) -> int:
    from datetime import datetime

    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def _backfill(config: BridgeConfig, times: list[str]) -> int:
    import time

    from .jobs.backfill import backfill
    from .store.connect import influx_client
    from .store.influx import InfluxError
    from .store.storage import Storage

    if len(times) > 2:
        print("promflux-bridge: --backfill takes FROM and an optional TO", file=sys.stderr)
        return 2
    try:
        start = _timestamp(times[0])
        end = _timestamp(times[1]) if len(times) == 2 else int(time.time())
    except ValueError as exc:
        print(f"promflux-bridge: --backfill: not an ISO 8601 time: {exc}", file=sys.stderr)
        return 2
    if end <= start:
        print("promflux-bridge: --backfill: TO must be after FROM", file=sys.stderr)
        return 2
    influx = config.influxdb

    async def run() -> tuple[int, int]:
        # the configured TLS and consistency; a longer timeout (a whole range per query)
        client = influx_client(influx, timeout=max(influx.timeout, 60.0))
        try:
            # Written at once (no writer, no buffer): a refusal fails the command.
            return await backfill(Storage(client, influx.database), start, end)
        finally:
            await client.close()

    try:
        hours, days = asyncio.run(run())
    except InfluxError as exc:
        print(f"promflux-bridge: backfill failed: {exc}", file=sys.stderr)
        return 1
    print(f"backfilled {hours} hours and {days} days")
    return 0


if __name__ == "__main__":
    sys.exit(main())
