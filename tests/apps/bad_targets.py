"""Targets that misbehave: one answers too slowly, one late within the timeout, one
sends too much, one new series every time."""

import asyncio
import os

from aiohttp import web


async def slow_metrics(request: web.Request) -> web.Response:
    await asyncio.sleep(5)
    return web.Response(text="up 1\n")


async def lagging_metrics(request: web.Request) -> web.Response:
    """Half a second late (within a 1 s timeout): a scrape is under way half the time."""
    await asyncio.sleep(0.5)
    return web.Response(text="up 1\n")


async def big_metrics(request: web.Request) -> web.Response:
    return web.Response(text="".join(f'big{{i="{i}"}} {i}\n' for i in range(5000)))


async def health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def _app(metrics) -> web.Application:
    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/health", health)
    return app


def slow(argv=None) -> web.Application:
    return _app(slow_metrics)


def lagging(argv=None) -> web.Application:
    return _app(lagging_metrics)


def big(argv=None) -> web.Application:
    return _app(big_metrics)


_churned = [0]


async def churn_metrics(request: web.Request) -> web.Response:
    """``CHURN_SERIES`` (10,000) series never seen before on every scrape (a label holding
    a request id)."""
    count = int(os.environ.get("CHURN_SERIES", "10000"))
    start = _churned[0]
    _churned[0] += count
    # Event kinds the schema stores (so the counter state sees them too), each new.
    return web.Response(text="# TYPE events_processed_total counter\n" + "".join(
        f'events_processed_total{{kind="k{i}",service="churn"}} 1\n'
        for i in range(start, start + count)))


def churn(argv=None) -> web.Application:
    return _app(churn_metrics)
