"""Exponential backoff, the one retry policy of the bridge (writer, set-up, webhooks)."""

from __future__ import annotations

import asyncio


class Backoff:
    """Delays that double from ``initial`` up to ``maximum``; ``reset`` after a success."""

    __slots__ = ("initial", "maximum", "_next")

    def __init__(self, initial: float = 0.5, maximum: float = 30.0) -> None:
        if initial <= 0 or maximum < initial:
            raise ValueError("backoff needs 0 < initial <= maximum")
        self.initial = initial
        self.maximum = maximum
        self._next = initial

    def next_delay(self) -> float:
        """The delay to wait now; the following one is twice as long (capped)."""
        delay = self._next
        self._next = min(delay * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self._next = self.initial

    async def sleep(self) -> float:
        """Wait the next delay; returns how long that was."""
        delay = self.next_delay()
        await asyncio.sleep(delay)
        return delay
