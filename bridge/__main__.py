"""``python -m bridge --config bridge.yml`` (or ``promflux-bridge``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from .config import ConfigError, load


def main(argv: list[str] | None = None) -> int:
    """Run the bridge; exit code 2 for an invalid configuration."""
    parser = argparse.ArgumentParser(prog="promflux-bridge", description=(
        "Scrape Prometheus /metrics and write percentiles and rates to InfluxDB."))
    parser.add_argument("--config", required=True, help="YAML configuration file")
    parser.add_argument("--check-config", action="store_true",
                        help="validate the configuration and exit")
    args = parser.parse_args(argv)
    try:
        config = load(args.config)
    except ConfigError as exc:
        print(f"promflux-bridge: invalid configuration: {exc}", file=sys.stderr)
        return 2
    if args.check_config:
        print(f"{args.config}: OK ({len(config.targets)} targets, InfluxDB "
              f"{config.influxdb.url} database {config.influxdb.database})")
        return 0
    logging.basicConfig(level=config.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from .app import Bridge

    async def run() -> None:
        bridge = Bridge(config)
        task = asyncio.create_task(bridge.run())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            pass

    try:
        asyncio.run(run())
    except ConfigError as exc:  # a secret that cannot be read
        print(f"promflux-bridge: invalid configuration: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
