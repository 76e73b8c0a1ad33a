"""TLS settings as aiohttp takes them, for every outgoing connection: targets, InfluxDB,
Alertmanager, webhooks, discovery and the HA peer."""

from __future__ import annotations

import functools
import ssl

from .config import TLS


@functools.lru_cache(maxsize=256)
def ssl_context(tls: TLS) -> ssl.SSLContext | bool:
    """aiohttp's ``ssl=`` for a TLS setting (verification on unless turned off). One
    context per setting for the process: building one costs milliseconds, and the same
    context lets aiohttp reuse the connection."""
    if not tls.verify:
        return False
    if tls.ca_file is not None:
        return ssl.create_default_context(cafile=str(tls.ca_file))
    return True
