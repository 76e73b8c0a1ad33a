"""Refreshes the regression baselines from InfluxDB every few minutes (see
``analyze.baselines``); a failed refresh keeps the previous baselines."""

from __future__ import annotations

import asyncio
import logging
import time

from ..analyze import baselines
from ..analyze.alerts import Evaluator
from ..store.influx import InfluxError
from ..store.storage import Storage

log = logging.getLogger("promflux.bridge.baselines")


class BaselineJob:
    def __init__(self, storage: Storage, evaluator: Evaluator, window_s: float,
                 min_requests: float, every_s: float = 300.0) -> None:
        self.storage = storage
        self.evaluator = evaluator
        self.window_s = window_s
        self.min_requests = min_requests
        self.every_s = every_s

    async def refresh(self, now: float) -> int:
        """Fetch the baselines as of ``now``; returns how many endpoints have one."""
        answer = await self.storage.baselines(now, self.window_s)
        self.evaluator.set_baselines(baselines.reduce(answer, self.min_requests))
        return len(self.evaluator.baselines)

    async def run(self, ready: asyncio.Event) -> None:
        await ready.wait()  # the database and its retention policies exist
        while True:
            try:
                await self.refresh(time.time())
            except InfluxError as exc:
                log.warning("regression baselines not refreshed: %s", exc)
            await asyncio.sleep(self.every_s)
