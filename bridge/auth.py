"""A bearer token for an outgoing request, re-read at most every ``ttl`` seconds: a secret
file is not read for every request, and a rotated token is picked up within ``ttl``."""

from __future__ import annotations

import time
from collections.abc import Callable

from .config import Secret

TTL_S = 60.0


class BearerHeaders:
    def __init__(self, token: Secret | None, ttl: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.token, self.clock = token, clock
        self.ttl = TTL_S if ttl is None else ttl
        self._headers: dict[str, str] = {}
        self._read_at: float | None = None

    def headers(self) -> dict[str, str]:
        """``User-Agent`` and, with a token, ``Authorization``; raises ConfigError when the
        secret cannot be read (the caller reports it as that request's failure)."""
        now = self.clock()
        if self._read_at is None or now - self._read_at >= self.ttl:
            headers = {"User-Agent": "promflux-bridge"}
            if self.token is not None:
                headers["Authorization"] = f"Bearer {self.token.resolve()}"
            self._headers, self._read_at = headers, now
        return self._headers
