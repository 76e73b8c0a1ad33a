"""Applications made by factories, several per process, as test suites and app factories
do: every one is instrumented with the default registry.

    factory_fastapi:   /alpha and /beta, two instrumented FastAPI apps (services alpha and
                       beta) mounted in one root, after the alpha factory ran twice more
    factory_aiohttp:   the third aiohttp app its factory made in this process
"""

from __future__ import annotations

from aiohttp import web
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.routing import Mount

from promflux import exporter


def make_fastapi(service: str) -> FastAPI:
    app = FastAPI()

    @app.get("/x")
    async def x() -> dict[str, str]:
        return {"service": service}

    exporter.instrument(app, service=service)
    return app


def factory_fastapi() -> Starlette:
    make_fastapi("alpha")
    make_fastapi("alpha")
    return Starlette(routes=[Mount("/alpha", make_fastapi("alpha")),
                             Mount("/beta", make_fastapi("beta"))])


def make_aiohttp() -> web.Application:
    async def x(request: web.Request) -> web.Response:
        return web.Response(text="x")

    app = web.Application()
    app.router.add_get("/x", x)
    exporter.instrument(app, service="gamma")
    return app


def factory_aiohttp(argv: list[str] | None = None) -> web.Application:
    make_aiohttp()
    make_aiohttp()
    return make_aiohttp()
