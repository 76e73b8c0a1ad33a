"""Targets that misbehave: one answers too slowly, one sends too much."""

import asyncio

from aiohttp import web


async def slow_metrics(request: web.Request) -> web.Response:
    await asyncio.sleep(5)
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


def big(argv=None) -> web.Application:
    return _app(big_metrics)
