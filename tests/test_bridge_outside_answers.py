"""Answers from outside read whole up to a bound, and refused beyond it, with real local
HTTP servers: an HTTP discovery answer far over one network read, an Alertmanager that
answers 500 with a body that never ends, one that never answers beside a healthy one."""

from __future__ import annotations

import asyncio
import json
import time
import tracemalloc

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry
from promflux.bridge.analyze.alerts import Change
from promflux.bridge.config import Alertmanager, HttpSD
from promflux.bridge.discover.sources import MAX_BYTES, HttpSource
from promflux.bridge.notify.alertmanager import AlertmanagerSender


async def serve(handler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


def groups(n: int) -> bytes:
    return json.dumps([{"targets": [f"10.0.{i // 250}.{i % 250}:8000"],
                        "labels": {"service": f"svc-{i}"}} for i in range(n)]).encode()


def test_http_discovery_reads_every_target_of_a_large_answer():
    """1,000 and 20,000 targets (72 KB and 1.5 MB, many network reads) are all read; an
    answer over the bound is refused with the reason and the last good targets kept."""

    async def run() -> None:
        bodies = {"/1k": groups(1_000), "/20k": groups(20_000),
                  "/huge": b"[" + b" " * (MAX_BYTES + 10) + b"]"}

        async def handler(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await response.prepare(request)
            body = bodies[request.path]
            for i in range(0, len(body), 8192):  # in pieces, as a slow server sends
                await response.write(body[i:i + 8192])
            await response.write_eof()
            return response

        runner, url = await serve(handler)
        try:
            async with aiohttp.ClientSession() as session:
                for path, n in (("/1k", 1_000), ("/20k", 20_000)):
                    source = HttpSource(HttpSD(url=url + path))
                    assert await source.refresh(session)
                    assert len(source.targets) == n and not source.problems
                source.config = HttpSD(url=url + "/huge")
                source.where = url + "/huge"
                assert not await source.refresh(session)
                assert len(source.targets) == 20_000  # the last good ones
                assert f"larger than {MAX_BYTES} bytes" in str(source.problems)
        finally:
            await runner.cleanup()

    asyncio.run(run())


def change(at: float) -> Change:
    return Change(service="api", endpoint="GET /x", metric="error_rate_percent",
                  level="critical", previous="ok", value=20.0, threshold=10.0, at=at)


def test_an_alertmanager_that_never_stops_answering_costs_a_bounded_read():
    """500 with an endless body: the post fails at once with the start of the body, and the
    bridge reads about a kilobyte of it, not the 5 s timeout's worth."""

    async def run() -> tuple[int, list[str], float]:
        async def endless(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse(status=500)
            await response.prepare(request)
            chunk = b"<html>error " * 5000
            while request.transport is not None and not request.transport.is_closing():
                await response.write(chunk)  # (until the client hangs up)
            return response

        runner, url = await serve(endless)
        try:
            sender = AlertmanagerSender([Alertmanager(url=url, timeout=5.0)],
                                        CollectorRegistry())
            sender.notify(change(time.time()))
            tracemalloc.start()
            started = time.monotonic()
            async with aiohttp.ClientSession() as session:
                await sender._post(session, sender.targets[0], sender.batch(60.0))
            elapsed = time.monotonic() - started
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            return peak, [s.labels for s in sender.failed.collect()[0].samples
                          if s.name.endswith("_total") and s.value == 1], elapsed
        finally:
            await runner.cleanup()

    peak, failed, elapsed = asyncio.run(run())
    assert failed and elapsed < 2.0
    assert peak < 2 * 1024**2, peak  # (before: the whole body until the timeout)


def test_a_hanging_alertmanager_never_delays_a_healthy_one():
    async def run() -> list[float]:
        got: list[float] = []

        async def healthy(request: web.Request) -> web.Response:
            got.append(time.monotonic())
            return web.Response(status=200)

        async def hanging(request: web.Request) -> web.Response:
            while request.transport is not None and not request.transport.is_closing():
                await asyncio.sleep(0.1)  # no answer, until the client hangs up
            return web.Response()

        good, good_url = await serve(healthy)
        bad, bad_url = await serve(hanging)
        try:
            sender = AlertmanagerSender(
                [Alertmanager(url=bad_url, timeout=30.0, resend_interval=0.3),
                 Alertmanager(url=good_url, timeout=30.0, resend_interval=0.3)],
                CollectorRegistry())
            sender.notify(change(time.time()))
            task = asyncio.create_task(sender.run())
            await asyncio.sleep(3.0)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return got
        finally:
            await good.cleanup()
            await bad.cleanup()

    got = asyncio.run(run())
    # Every 0.3 s for 3 s while the other hangs (before: once, then waiting on the hang).
    assert len(got) >= 6, got
    assert max(b - a for a, b in zip(got, got[1:], strict=False)) < 1.0
