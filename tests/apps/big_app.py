"""A target whose exposition is larger than the bridge's limits allow."""

from aiohttp import web


async def metrics(request: web.Request) -> web.Response:
    return web.Response(text="".join(f'big{{i="{i}"}} {i}\n' for i in range(5000)))


async def health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def create_app(argv=None) -> web.Application:
    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/health", health)
    return app
