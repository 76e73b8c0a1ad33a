"""Fetching one target's /metrics over HTTP, within its limits. Thin I/O."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from ..auth import RefreshedHeaders
from ..bodies import TooLarge, read_bounded
from ..config import ConfigError, Target
from ..redact import redact
from ..tls import ssl_context

ACCEPT = "text/plain;version=0.0.4;q=1.0,*/*;q=0.1"


class ScrapeError(Exception):
    """A failed scrape; the message says why (never a credential)."""


@dataclass(frozen=True)
class Fetched:
    text: str
    openmetrics: bool


def auth_headers(target: Target) -> dict[str, str]:
    """Authorization for a target, resolved now (environment variables, files)."""
    if target.bearer_token is not None:
        return {"Authorization": "Bearer " + target.bearer_token.resolve()}
    if target.basic_auth is not None:
        pair = f"{target.basic_auth.username}:{target.basic_auth.password.resolve()}"
        return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}
    return {}


class AuthCache(RefreshedHeaders):
    """A target's request headers (``Accept`` and its credentials), refreshed as
    ``auth.RefreshedHeaders`` does."""

    def __init__(self, target: Target, ttl: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(lambda: {"Accept": ACCEPT, **auth_headers(target)}, ttl, clock)


async def fetch(session: aiohttp.ClientSession, target: Target, timeout: float,
                max_body_bytes: int, auth: AuthCache | None = None) -> Fetched:
    """GET the target's exposition; raises ScrapeError."""
    try:
        headers = (auth or AuthCache(target)).headers()
    except ConfigError as exc:  # a secret file gone or unreadable: this scrape fails
        raise ScrapeError(str(exc)) from None
    try:
        async with session.get(target.url, headers=headers, ssl=ssl_context(target.tls),
                               timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            if response.status != 200:
                raise ScrapeError(f"HTTP {response.status} from {redact(target.url)}")
            try:
                body = await read_bounded(response, max_body_bytes)
            except TooLarge as exc:
                raise ScrapeError(str(exc)) from None
            content_type = response.headers.get("Content-Type", "")
    except TimeoutError:
        raise ScrapeError(f"timed out after {timeout:g} s") from None
    except aiohttp.ClientError as exc:
        raise ScrapeError(redact(f"cannot reach {target.url}: {type(exc).__name__}: {exc}")
                          ) from None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScrapeError(f"body is not UTF-8 (byte {exc.start})") from None
    return Fetched(text, content_type.startswith("application/openmetrics-text"))
