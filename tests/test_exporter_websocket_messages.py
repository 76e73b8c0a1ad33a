"""WebSocket messages on real aiohttp and uvicorn/FastAPI servers: handling time by kind,
close codes (client, server, handler error), and WebSocket routes never shown as HTTP
endpoints; FastAPI's documentation routes left out."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from promflux.exporter import instrument

from .conftest import Samples, aiohttp_server, scrape, uvicorn_server, wait_for

pytestmark = pytest.mark.compat
ROUTE = "/ws/readings"
DURATION = "websocket_message_duration_seconds"


@pytest.fixture(params=["aiohttp", "fastapi"])
def service(request):
    server = (aiohttp_server("tests.apps.aiohttp_app:create_app") if request.param == "aiohttp"
              else uvicorn_server("tests.apps.fastapi_app:app"))
    yield server
    server.stop()


async def session(url: str, messages: list[dict], close: bool = True) -> None:
    async with aiohttp.ClientSession() as client:
        async with client.ws_connect(url.replace("http", "ws", 1) + ROUTE) as ws:
            for message in messages:
                await ws.send_str(json.dumps(message))
                if message["type"] in ("reading", "command"):
                    assert (await ws.receive()).data == "ok"
            if close:
                await ws.close()  # 1000, from the client
            else:
                await ws.receive()  # the server's close


def test_messages_are_timed_by_kind_and_closes_counted_by_code(service):
    before = scrape(service.url)
    assert not before.find("http_request_duration_seconds_count", route=ROUTE)
    assert not before.find("http_request_duration_seconds_count", route="/ws")
    readings = [{"type": "reading", "sleep_ms": 30}] * 5
    commands = [{"type": "command", "sleep_ms": 0}] * 3
    asyncio.run(session(service.url, readings + commands))
    asyncio.run(session(service.url, [{"type": "reading", "sleep_ms": 0},
                                      {"type": "bye"}], close=False))
    asyncio.run(session(service.url, [{"type": "boom"}], close=False))

    def closed(samples: Samples) -> float:
        return sum(v for _, labels, v in samples.find("websocket_closes_total", route=ROUTE))

    after = wait_for(lambda: scrape(service.url), lambda s: closed(s) >= 3)
    assert after.value(f"{DURATION}_count", route=ROUTE, kind="reading") == 6
    assert after.value(f"{DURATION}_count", route=ROUTE, kind="command") == 3
    assert after.value(f"{DURATION}_sum", route=ROUTE, kind="reading") >= 5 * 0.030
    # Handled in under 25 ms each (they sleep 0): the histogram puts them there.
    assert after.value(f"{DURATION}_bucket", route=ROUTE, kind="command", le="0.025") == 3
    codes = {labels["code"]: v for _, labels, v in after.find("websocket_closes_total",
                                                              route=ROUTE)}
    assert codes == {"1000": 1, "4001": 1, "1011": 1}
    assert after.value("websocket_errors_total", route=ROUTE, exception="RuntimeError") == 1
    assert after.value("websocket_connections_opened_total", route=ROUTE) == 3
    assert after.value("websocket_connections_active", route=ROUTE) == 0
    # Still no HTTP endpoint for either WebSocket route, after connections too.
    assert not after.find("http_request_duration_seconds_count", route=ROUTE)


def test_fastapi_documentation_routes_are_not_endpoints():
    server = uvicorn_server("tests.apps.fastapi_app:app")
    try:
        for path in ("/docs", "/openapi.json", "/redoc"):
            assert httpx.get(server.url + path).status_code == 200
        samples = scrape(server.url)
        routes = samples.label_values("http_request_duration_seconds_count", "route")
        assert not routes & {"/docs", "/openapi.json", "/redoc", "/docs/oauth2-redirect"}
        assert "/items/{item_id}" in routes
    finally:
        server.stop()


def test_documentation_routes_can_be_recorded():
    app = FastAPI()
    default = instrument(app, "docs-default", registry=CollectorRegistry())
    assert "/docs" in default._recorder.skip_paths
    kept = instrument(FastAPI(), "docs-kept", registry=CollectorRegistry(),
                      exclude_docs=False)
    assert "/docs" not in kept._recorder.skip_paths
