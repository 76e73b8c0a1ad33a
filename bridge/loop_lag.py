"""How long the event loop goes without a turn: every scrape loop, HTTP handler and write
waits on it, so a long stretch of work anywhere shows here first.

A timer fires every ``tick`` seconds and its lateness is observed. Lateness alone also
counts the time a loaded machine gave the process no CPU; the CPU the event loop's thread
used while the timer was late does not, and its largest value is kept beside the
histogram: that is the longest the bridge itself held the loop."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import CollectorRegistry, Gauge, Histogram

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class LoopLag:
    def __init__(self, registry: CollectorRegistry, tick: float = 0.05) -> None:
        self.tick = tick
        self.longest_cpu = 0.0
        self.lag = Histogram("promflux_bridge_event_loop_lag_seconds",
                             "How late a timer of the event loop fired.", buckets=BUCKETS,
                             registry=registry)
        self.held = Gauge("promflux_bridge_event_loop_longest_hold_cpu_seconds",
                          "The most CPU the event loop's thread spent while a timer waited "
                          "(since start): the longest the bridge held the loop.",
                          registry=registry)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due, cpu = loop.time() + self.tick, time.thread_time()
            await asyncio.sleep(self.tick)
            late = max(0.0, loop.time() - due)
            self.lag.observe(late)
            held = min(late, max(0.0, time.thread_time() - cpu))
            if held > self.longest_cpu:
                self.longest_cpu = held
                self.held.set(held)
