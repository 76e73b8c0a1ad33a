"""Posting state changes to webhooks: generic JSON, one request per change, retried.

Each webhook has its own queue and sender, so a dead receiver never delays another, and
changes reach a receiver in the order they happened. A change that still fails after the
retries is logged and counted, and the next one is sent. A queue holds at most
``MAX_WAITING`` changes: past that (a receiver down for hours while alerts flap) the oldest
waiting change is dropped and counted, so memory stays bounded and the receiver gets the
latest states when it is back.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from prometheus_client import CollectorRegistry, Counter

from ..analyze.alerts import Change
from ..auth import bearer_headers
from ..config import ConfigError, Webhook
from ..redact import redact
from ..retry import Backoff
from ..tls import ssl_context

log = logging.getLogger("promflux.bridge.webhooks")
MAX_WAITING = 1000  # changes waiting per webhook


class Notifier:
    def __init__(self, webhooks: list[Webhook], registry: CollectorRegistry) -> None:
        self.webhooks = webhooks
        self.sent = Counter("promflux_bridge_webhooks_sent", "Notifications delivered.",
                            ["url"], registry=registry)
        self.failed = Counter("promflux_bridge_webhooks_failed",
                              "Notifications given up after retries.", ["url"],
                              registry=registry)
        self.dropped = Counter("promflux_bridge_webhooks_dropped",
                               "Notifications dropped, oldest first, from a full queue.",
                               ["url"], registry=registry)
        self._queues: list[asyncio.Queue[Change]] = [
            asyncio.Queue(MAX_WAITING) for _ in webhooks]
        self._dropping: set[int] = set()  # webhooks whose queue has overflowed

    def notify(self, change: Change) -> None:
        for number, (hook, queue) in enumerate(zip(self.webhooks, self._queues, strict=True)):
            if queue.full():
                queue.get_nowait()
                if number not in self._dropping:  # (said once)
                    self._dropping.add(number)
                    log.error("webhook %s: %d changes wait; the oldest are dropped from now "
                              "on (counted in promflux_bridge_webhooks_dropped_total)",
                              redact(hook.url), MAX_WAITING)
                self.dropped.labels(redact(hook.url)).inc()
            queue.put_nowait(change)

    async def run(self) -> None:
        if not self.webhooks:
            return
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(self._sender(session, hook, queue)
                                   for hook, queue in zip(self.webhooks, self._queues,
                                                          strict=True)))

    async def _sender(self, session: aiohttp.ClientSession, hook: Webhook,
                      queue: asyncio.Queue[Change]) -> None:
        auth = bearer_headers(hook.bearer_token)
        timeout = aiohttp.ClientTimeout(total=hook.timeout)
        while True:
            change = await queue.get()
            backoff = Backoff(0.5, 30.0)
            for attempt in range(hook.retries + 1):
                try:
                    headers = auth.headers()
                except ConfigError as exc:  # the token cannot be read (now)
                    error, retryable = str(exc), True
                else:
                    error, retryable = await self._post(session, hook, change, headers,
                                                        timeout)
                if not error:
                    self.sent.labels(redact(hook.url)).inc()
                    break
                if not retryable or attempt == hook.retries:
                    self.failed.labels(redact(hook.url)).inc()
                    log.error("webhook %s: gave up on %s %s %s -> %s: %s", redact(hook.url),
                              change.service, change.endpoint, change.metric, change.level,
                              error)
                    break
                await backoff.sleep()

    @staticmethod
    async def _post(session: aiohttp.ClientSession, hook: Webhook, change: Change,
                    headers: dict[str, str], timeout: aiohttp.ClientTimeout) -> tuple[str, bool]:
        """("", _) when delivered; else (why, whether to try again)."""
        try:
            async with session.post(hook.url, json=change.as_json(), headers=headers,
                                    ssl=ssl_context(hook.tls), timeout=timeout) as response:
                if response.status < 300:
                    return "", False
                # A 4xx is the receiver refusing it, except timeouts and rate limits.
                refused = 400 <= response.status < 500 and response.status not in (408, 429)
                return f"HTTP {response.status}", not refused
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return repr(exc), True
