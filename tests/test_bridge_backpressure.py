"""While the writer is backlogged, scrapes are put off, not points dropped: no request goes
to the target, each put-off interval is counted, and the first scrape after it stores the
whole increase of a counter (nothing of the count is lost). Real HTTP target on loopback."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry
from promflux.bridge.analyze import schema
from promflux.bridge.config import ScrapeConfig, Target
from promflux.bridge.ingest.loop import ScrapeMetrics, TargetScraper
from promflux.bridge.store.buffer import DiskBuffer
from promflux.bridge.store.influx import InfluxClient
from promflux.bridge.store.writer import Writer, WriterMetrics

from .conftest import free_port
from .test_bridge_outside_answers import serve


async def until(condition, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def test_scrapes_are_put_off_while_held_and_the_next_one_stores_the_whole_increase():
    async def go() -> tuple[int, int, list[float]]:
        events = [100]
        hits = [0]

        async def metrics(request: web.Request) -> web.Response:
            hits[0] += 1
            return web.Response(text="# TYPE events_processed_total counter\n"
                                     f'events_processed_total{{kind="reading"}} {events[0]}\n')

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        stored: list[float] = []

        async def sink(target, points, when, stamp, up, increments) -> None:
            stored.extend(f["events"] for m, _, f, _ in points if m == schema.EVENTS)

        held = [False]
        registry = CollectorRegistry()
        scraper = TargetScraper(
            Target.model_validate({"service": "svc", "url": f"http://127.0.0.1:{port}/metrics"}),
            ScrapeConfig.model_validate({"interval": "100ms", "timeout": "100ms"}),
            ScrapeMetrics(registry), sink, hold=lambda: held[0])
        ready = asyncio.Event()
        ready.set()
        async with aiohttp.ClientSession() as session:
            task = asyncio.create_task(scraper.run(session, ready))
            await until(lambda: scraper.status.scrapes >= 2)
            held[0] = True
            await asyncio.sleep(0.15)  # a scrape under way when the hold began may finish
            hits_held = hits[0]
            events[0] += 30  # counted by the service while the bridge holds off
            await until(lambda: scraper.status.deferred >= 5)
            hits_during = hits[0] - hits_held
            held[0] = False
            scrapes = scraper.status.scrapes
            await until(lambda: scraper.status.scrapes >= scrapes + 1 and sum(stored) >= 30)
            task.cancel()
        await runner.cleanup()
        deferred = registry.get_sample_value("promflux_bridge_scrapes_deferred_total",
                                             {"service": "svc"})
        assert deferred == scraper.status.deferred
        return hits_during, int(deferred or 0), stored

    hits_during, deferred, stored = asyncio.run(go())
    assert hits_during == 0  # no request to the target while held
    assert deferred >= 5
    assert sum(stored) == 30  # the baseline stored nothing; the 30 arrive whole after it


def test_the_writer_is_backlogged_over_half_its_memory_queue(tmp_path):
    async def go() -> list[tuple[float, bool]]:
        client = InfluxClient(f"http://127.0.0.1:{free_port()}", "none")  # never written to
        registry = CollectorRegistry()
        writer = Writer(client, DiskBuffer(tmp_path, 1 << 22), WriterMetrics(registry),
                        max_queue_bytes=10_000)
        point = ("m", {"k": "a"}, {"v": 1.0}, 1000)
        seen = []
        for _ in range(20):  # its task is not running: nothing leaves the queue
            writer.submit([point] * 20)
            seen.append((registry.get_sample_value("promflux_bridge_write_queue_bytes"),
                         writer.backlogged))
        await client.close()
        return seen

    seen = asyncio.run(go())
    assert all(backlogged == (queued > 5_000) for queued, backlogged in seen)
    assert {backlogged for _, backlogged in seen} == {False, True}


def test_a_scrape_that_overruns_its_slot_counts_the_slots_it_skipped():
    async def run() -> tuple[int, int]:
        async def slow(request: web.Request) -> web.Response:
            await asyncio.sleep(0.35)  # three and a half 100 ms slots
            return web.Response(text="up 1\n")

        runner, url = await serve(slow)

        async def sink(*args: object) -> None:
            pass

        registry = CollectorRegistry()
        scraper = TargetScraper(
            Target.model_validate({"service": "svc", "url": f"{url}/metrics", "timeout": "2s"}),
            ScrapeConfig.model_validate({"interval": "100ms", "timeout": "2s"}),
            ScrapeMetrics(registry), sink)
        ready = asyncio.Event()
        ready.set()
        async with aiohttp.ClientSession() as session:
            task = asyncio.create_task(scraper.run(session, ready))
            await until(lambda: scraper.status.scrapes >= 3)
            task.cancel()
        await runner.cleanup()
        counted = registry.get_sample_value("promflux_bridge_scrape_slots_missed_total",
                                            {"service": "svc"})
        return scraper.status.missed, int(counted or 0)

    missed, counted = asyncio.run(run())
    assert missed >= 3 and counted == missed  # about three slots skipped per scrape
