"""An asyncio.Queue that measures how long items wait between put and get."""

from __future__ import annotations

import asyncio
from collections import deque
from time import perf_counter
from typing import Any, Generic, TypeVar

from .accumulator import HistogramAccumulator

T = TypeVar("T")


class InstrumentedQueue(asyncio.Queue, Generic[T]):  # type: ignore[type-arg]
    """A FIFO ``asyncio.Queue`` whose put-to-get wait lands in ``queue_wait_seconds``.

    ``_put``/``_get`` are the hooks asyncio itself uses for PriorityQueue and LifoQueue;
    every put/get path (waiting or ``*_nowait``) goes through them. Its size is reported
    as ``queue_size`` at each scrape.
    """

    def __init__(self, name: str, waits: HistogramAccumulator, maxsize: int = 0) -> None:
        super().__init__(maxsize)
        self.name = name
        self._waits = waits
        self._key = (name,)

    def _init(self, maxsize: int) -> None:
        self._queue: deque[tuple[float, Any]] = deque()

    def _put(self, item: Any) -> None:
        self._queue.append((perf_counter(), item))

    def _get(self) -> Any:
        put_at, item = self._queue.popleft()
        self._waits.observe(self._key, perf_counter() - put_at)
        return item
