"""Start-up work against InfluxDB: the schema (retried until it works) and stored states."""

from __future__ import annotations

import asyncio
import logging

from ..analyze import schema
from ..config import Retention
from ..retry import Backoff
from . import rollups
from .influx import InfluxClient, InfluxError

log = logging.getLogger("promflux.bridge")

# (service, endpoint, metric), level, time in seconds, value
StoredState = tuple[tuple[str, str, str], str, float, float | None]


async def create_schema(client: InfluxClient, retention: Retention,
                        continuous_queries: bool = True, replication: int = 1) -> None:
    """Database, retention policies and continuous queries; retried while InfluxDB is away."""
    backoff = Backoff(1.0, 30.0)
    while True:
        try:
            for line in await client.setup(retention.raw, retention.hourly, retention.daily,
                                           continuous_queries, replication):
                if line.startswith("warning: "):
                    log.warning("InfluxDB: %s", line.removeprefix("warning: "))
                else:
                    log.info("InfluxDB: %s", line)
            return
        except InfluxError as exc:
            delay = backoff.next_delay()
            log.warning("InfluxDB set-up failed (retrying in %.0f s): %s", delay, exc)
            await asyncio.sleep(delay)


async def stored_states(client: InfluxClient, database: str) -> list[StoredState]:
    """The last stored threshold state of every series ([] when InfluxDB cannot say).

    One selector and a plain field: with two selectors InfluxDB 1.x returns time 0.
    """
    try:
        results = await client.query(
            f'SELECT last("level") AS "level", "value" FROM '
            f'"{rollups.RAW}"."{schema.STATES}" GROUP BY "service", "endpoint", "metric"',
            db=database, epoch="ms")
    except InfluxError as exc:
        log.warning("could not restore threshold states: %s", exc)
        return []
    out: list[StoredState] = []
    for result in results:
        for series in result.get("series", []):
            tags = series.get("tags", {})
            key = (tags.get("service", ""), tags.get("endpoint", ""), tags.get("metric", ""))
            for time_ms, level, value in series.get("values", []):
                out.append((key, level, time_ms / 1000, value))
    return out
