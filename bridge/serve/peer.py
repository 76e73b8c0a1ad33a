"""The other replica of an HA pair, watched through its /healthz: the primary always sends
the generic webhooks, the other one only while the primary does not answer. (Alertmanager
deduplicates the identical alerts both replicas send, so those go out from both.)

A replica that missed slots of a target (it was stalled) asks its twin whether it stored
them (``covers``): the twin's ``/api/coverage`` says since when it has stored every
interval of that target."""

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
            log.warning("HA peer %s is %s: this replica %s webhooks",
                        redact(self.config.peer), "back" if up else "down",
                        "stops sending" if up else "now sends")
            self.peer_up = up

    async def covers(self, session: aiohttp.ClientSession, service: str, url: str,
                     since: float, until: float) -> bool:
        """Whether the twin has stored every interval of the target from ``since`` to
        ``until`` (wall seconds, slot times): it counted on without a break from before
        ``since``, and its last stored slot is ``until`` or later. A twin that stalled too
        has not (its last slot is old), so two stalled replicas never both leave the same
        slots to each other. No answer within a second counts as no: this replica then
        stores the whole interval itself, as a single bridge does."""
        if self.config is None:
            return False
        try:
            async with session.get(self.config.peer + "/api/coverage",
                                   params={"service": service, "url": url},
                                   timeout=aiohttp.ClientTimeout(total=1)) as response:
                if response.status != 200:
                    return False
                found = await response.json()
                first, last = found.get("covered_since"), found.get("covered_until")
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError, AttributeError):
            return False
        return (isinstance(first, int | float) and isinstance(last, int | float)
                and first <= since and last >= until)

    async def run(self, session: aiohttp.ClientSession) -> None:
        if self.config is None or self.config.primary:
            return
        while True:
            await self.check(session)
            await asyncio.sleep(self.every_s)
