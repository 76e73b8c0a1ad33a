"""The other replica of an HA pair, watched through its /healthz: the primary always sends
the generic webhooks, the other one only while the primary does not answer. (Alertmanager
deduplicates the identical alerts both replicas send, so those go out from both.) Both
watch, so a replica that was stalled knows whether its twin stored the slots it missed."""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from ..config import HighAvailability
from ..redact import redact

log = logging.getLogger("promflux.bridge.ha")


class PeerWatch:
    def __init__(self, config: HighAvailability | None, every_s: float = 2.0,
                 misses: int = 2) -> None:
        self.config = config
        self.every_s = every_s
        self.misses = misses  # checks in a row without an answer: the peer is down
        self.peer_up = True
        self._missed = 0

    @property
    def sends_webhooks(self) -> bool:
        return self.config is None or self.config.primary or not self.peer_up

    async def check(self, session: aiohttp.ClientSession) -> None:
        assert self.config is not None
        try:
            async with session.get(self.config.peer + "/healthz",
                                   timeout=aiohttp.ClientTimeout(total=2)) as response:
                # 503 is a degraded bridge, still running and sending its notifications.
                ok = response.status in (200, 503)
        except (aiohttp.ClientError, TimeoutError, OSError):
            ok = False
        self._missed = 0 if ok else self._missed + 1
        up = self._missed < self.misses
        if up != self.peer_up:
            if self.config.primary:
                log.warning("HA peer %s is %s", redact(self.config.peer),
                            "back" if up else "down")
            else:
                log.warning("HA peer %s is %s: this replica %s webhooks",
                            redact(self.config.peer), "back" if up else "down",
                            "stops sending" if up else "now sends")
            self.peer_up = up

    @property
    def twin_covers(self) -> bool:
        """Whether the twin is taken to have stored the slots this replica missed."""
        return self.config is not None and self.peer_up

    async def run(self, session: aiohttp.ClientSession) -> None:
        if self.config is None:
            return
        while True:
            await self.check(session)
            await asyncio.sleep(self.every_s)
