"""The other replica of an HA pair. The standby reads the primary's ``/api/coverage``
every second: it says which slots the primary has stored (the standby writes only the
others, ``store/handover.py``), and whether it answers at all: the primary always sends
the generic webhooks, the standby only while the primary does not answer. (Alertmanager
deduplicates the identical alerts both replicas send, so those go out from both.)

A replica that missed slots of a target (it was stalled) asks its twin whether it stored
them (``covers``): the twin's ``/api/coverage`` says since when it has stored every
interval of that target."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping

import aiohttp

from ..bodies import read_bounded
from ..config import HighAvailability
from ..redact import redact
from ..store.handover import Coverage, Key
from ..tls import ssl_context

COVERAGE_BYTES = 64 * 1024**2  # the twin's answer, every target it scrapes

# the primary's coverage by target (None: no answer this time), whether it is down
Settle = Callable[[Mapping[Key, Coverage] | None, bool], object]

log = logging.getLogger("promflux.bridge.ha")


class PeerWatch:
    def __init__(self, config: HighAvailability | None, every_s: float = 1.0,
                 misses: int = 3) -> None:
        self.config = config
        self.every_s = every_s
        self.misses = misses  # checks in a row without an answer: the peer is down
        self.peer_up = True
        self._missed = 0
        self._role_warned = False

    @property
    def sends_webhooks(self) -> bool:
        return self.config is None or self.config.primary or not self.peer_up

    async def coverage(self, session: aiohttp.ClientSession
                       ) -> tuple[bool, dict[Key, Coverage] | None]:
        """Whether the twin answered, and as a primary, its coverage of every target it
        scrapes (None from a twin that is a standby too: it stores nothing of its own)."""
        assert self.config is not None
        try:
            async with session.get(self.config.peer + "/api/coverage",
                                   ssl=ssl_context(self.config.tls),
                                   timeout=aiohttp.ClientTimeout(total=1)) as response:
                if response.status != 200:
                    return False, None
                found = json.loads(await read_bounded(response, COVERAGE_BYTES))
            if found.get("role") != "primary":
                if not self._role_warned:
                    self._role_warned = True
                    log.error("HA peer %s is not a primary: set primary: true on exactly "
                              "one replica of a pair (until then both write every point)",
                              redact(self.config.peer))
                return True, None
            return True, {(t["service"], t["url"]): (t["covered_since"], t["covered_until"])
                          for t in found["targets"]}
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError, KeyError,
                TypeError, AttributeError):
            return False, None

    def check(self, ok: bool) -> None:
        """One answer, or none, from the twin: down after ``misses`` in a row."""
        assert self.config is not None
        self._missed = 0 if ok else self._missed + 1
        up = self._missed < self.misses
        if up != self.peer_up:
            log.warning("HA peer %s is %s: this replica %s webhooks",
                        redact(self.config.peer), "back" if up else "down",
                        "stops sending" if up else "now sends")
            self.peer_up = up

    async def covers(self, session: Callable[[], aiohttp.ClientSession | None],
                     service: str, url: str, since: float, until: float) -> bool:
        """Whether the twin has stored every interval of the target from ``since`` to
        ``until`` (wall seconds, slot times): it counted on without a break from before
        ``since``, and its last stored slot is ``until`` or later. A twin that stalled too
        has not (its last slot is old), so two stalled replicas never both leave the same
        slots to each other. No answer within a second counts as no: this replica then
        stores the whole interval itself, as a single bridge does."""
        client = session()
        if self.config is None or client is None:
            return False
        try:
            async with client.get(self.config.peer + "/api/coverage",
                                  params={"service": service, "url": url},
                                  ssl=ssl_context(self.config.tls),
                                  timeout=aiohttp.ClientTimeout(total=1)) as response:
                if response.status != 200:
                    return False
                found = json.loads(await read_bounded(response, COVERAGE_BYTES))
                first, last = found.get("covered_since"), found.get("covered_until")
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError, AttributeError):
            return False
        return (isinstance(first, int | float) and isinstance(last, int | float)
                and first <= since and last >= until)

    async def run(self, session: aiohttp.ClientSession, settle: Settle) -> None:
        """The standby's loop: read the primary's coverage, hand it to ``settle``."""
        if self.config is None or self.config.primary:
            return
        while True:
            answered, found = await self.coverage(session)
            self.check(answered)
            settle(found, not self.peer_up or (answered and found is None))
            await asyncio.sleep(self.every_s)
