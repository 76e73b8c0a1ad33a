"""Request headers that carry a secret, built again at most every ``ttl`` seconds: a secret
file is not read for every request, and a rotated secret is picked up within ``ttl``.
Targets, Alertmanager and webhooks all use it."""

from __future__ import annotations

import time
from collections.abc import Callable

from .config import Secret

TTL_S = 60.0


class RefreshedHeaders:
    def __init__(self, build: Callable[[], dict[str, str]], ttl: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.build, self.clock = build, clock
        self.ttl = TTL_S if ttl is None else ttl
        self._headers: dict[str, str] = {}
        self._built_at: float | None = None

    def headers(self) -> dict[str, str]:
        """The headers, built now if ``ttl`` has passed; raises ConfigError when a secret
        cannot be read (the caller reports it as that request's failure)."""
        now = self.clock()
        if self._built_at is None or now - self._built_at >= self.ttl:
            self._headers, self._built_at = self.build(), now
        return self._headers


def bearer_headers(token: Secret | None) -> RefreshedHeaders:
    """``User-Agent`` and, with a token, ``Authorization: Bearer``."""
    def build() -> dict[str, str]:
        headers = {"User-Agent": "promflux-bridge"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token.resolve()}"
        return headers

    return RefreshedHeaders(build)
