"""Long stretches of event-loop work cut into slices, so the scrape loops, HTTP handlers
and writes that share the loop wait at most one slice."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager

SLICE_S = 0.01  # longest stretch of work between two turns of the event loop
TASKS_PER_SLICE = 200


@contextmanager
def small_young_generations() -> Iterator[None]:
    """Keep the cycle collector's young generations small meanwhile: bulk work makes
    objects that all live on, and at the bridge's usual thresholds one collection of them
    would hold the event loop for over 100 ms. (The thresholds are the process's: work in
    a thread under this context is covered too.)"""
    global _bulk
    thresholds = gc.get_threshold()
    if _bulk == 0:
        gc.set_threshold(min(thresholds[0], 5000), min(thresholds[1], 5), thresholds[2])
    _bulk += 1
    try:
        yield
    finally:
        _bulk -= 1
        if _bulk == 0:
            gc.set_threshold(*thresholds)


async def in_slices(steps: Iterator[bool]) -> None:
    """Run ``steps`` to the end, yielding to the event loop after each ``SLICE_S`` and
    after every ``TASKS_PER_SLICE`` loops started or stopped (a step yields True for
    those: each costs the loop a turn of that task at its next pass)."""
    with small_young_generations():
        deadline, tasks = time.perf_counter() + SLICE_S, 0
        for task in steps:
            tasks += task
            if tasks >= TASKS_PER_SLICE or time.perf_counter() > deadline:
                await asyncio.sleep(0)
                deadline, tasks = time.perf_counter() + SLICE_S, 0


_bulk = 0  # bulk runs under way (they may overlap: start and an update)
