"""The one way to reach the configured InfluxDB: the bridge and its command line
(``--backfill``) build their client here, with the same credentials, TLS and consistency."""

from __future__ import annotations

from ..config import InfluxConfig
from ..tls import ssl_context
from .influx import InfluxClient


def influx_client(influx: InfluxConfig, timeout: float | None = None) -> InfluxClient:
    """A client for the settings; ``timeout`` replaces the configured one (a backfill asks
    for whole ranges at a time)."""
    return InfluxClient(influx.url, influx.database, username=influx.username,
                        password=influx.password.resolve() if influx.password else None,
                        timeout=timeout or influx.timeout,
                        ssl_context=ssl_context(influx.tls), consistency=influx.consistency)
