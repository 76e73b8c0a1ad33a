"""A target whose /metrics answers slower than any sane scrape timeout."""

import asyncio

from aiohttp import web


async def metrics(request: web.Request) -> web.Response:
    await asyncio.sleep(5)
    return web.Response(text="up 1\n")


async def health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def create_app(argv=None) -> web.Application:
    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/health", health)
    return app
