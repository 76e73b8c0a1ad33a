"""aiohttp requests recorded from the server's access-logger call: the user's own access log
still written (or not, as they chose), a response that fails after it started counted as an
exception and not left in progress, and a server that cancels handlers still timed. Real
aiohttp servers on loopback, run the way users run them (AppRunner with its settings)."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import threading
from typing import Any

import httpx
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry
from promflux.exporter import instrument

from .conftest import free_port, scrape, wait_for

pytestmark = pytest.mark.compat
COUNT = "http_request_duration_seconds_count"


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def make_app() -> web.Application:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def broken_stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"first part")
        raise RuntimeError("the data source failed half-way")

    async def slow_stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(200):  # 10 s in all: the client resets long before the end
            await response.write(b"x" * 65536)
            await asyncio.sleep(0.05)
        return response

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/stream", broken_stream)
    app.router.add_get("/slow-stream", slow_stream)
    instrument(app, service="access", registry=CollectorRegistry())
    return app


class ThreadServer:
    """A real aiohttp server (AppRunner + TCPSite) on its own loop in a thread."""

    def __init__(self, app: web.Application, **runner: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.runner = web.AppRunner(app, **runner)

        async def start() -> None:
            await self.runner.setup()
            await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
            ready.set()

        self.thread = threading.Thread(target=self._run, args=(start,), daemon=True)
        self.thread.start()
        assert ready.wait(30), "the server did not start"

    def _run(self, start: Any) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(start())
        self.loop.run_forever()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)


def get_ok(server: ThreadServer, times: int):  # noqa: ANN201 - conftest's Samples
    """GET /ok ``times`` times, then /metrics once it shows them."""
    for _ in range(times):
        assert httpx.get(server.url + "/ok").status_code == 200
    return wait_for(lambda: scrape(server.url),
                    lambda s: s.get(COUNT, route="/ok", status="200") >= times)


@pytest.mark.parametrize("logged", [True, False])
def test_requests_recorded_and_the_users_access_log_kept_as_chosen(logged):
    records = Records()
    logger = logging.getLogger(f"test.access.{logged}")
    logger.addHandler(records)
    logger.setLevel(logging.INFO)
    server = ThreadServer(make_app(), access_log=logger if logged else None,
                          access_log_format="%r %s")
    try:
        samples = get_ok(server, 3)
        assert samples.value(COUNT, route="/ok", method="GET", status="200") == 3
        assert samples.value("http_requests_in_progress") == 0
        ok_lines = [line for line in records.lines if "/ok" in line]
        assert ok_lines == (["GET /ok HTTP/1.1 200"] * 3 if logged else [])
    finally:
        server.stop()
        logger.removeHandler(records)


def test_a_response_that_fails_after_it_started_is_an_exception_not_left_in_progress():
    server = ThreadServer(make_app(), access_log=None)
    try:
        with pytest.raises(httpx.HTTPError):
            httpx.get(server.url + "/stream").read()
        samples = wait_for(lambda: scrape(server.url),
                           lambda s: s.get("http_exceptions_total", route="/stream") >= 1)
        assert samples.value("http_exceptions_total", route="/stream", method="GET",
                             exception="RuntimeError") == 1
        # Counted as a request, with the status of a failed response, and timed.
        assert samples.value(COUNT, route="/stream", method="GET", status="500") == 1
        assert samples.value("http_request_duration_seconds_sum", route="/stream",
                             method="GET", status="500") > 0
        assert samples.value("http_requests_in_progress") == 0
        after = get_ok(server, 1)
        assert after.value(COUNT, route="/ok", method="GET", status="200") == 1
        assert after.value("http_requests_in_progress") == 0
    finally:
        server.stop()


def test_a_server_that_cancels_handlers_is_timed_once_per_request():
    # A cancelled handler is never logged, so such a server keeps the wrapped entry point.
    server = ThreadServer(make_app(), handler_cancellation=True)
    try:
        samples = get_ok(server, 2)
        assert samples.value(COUNT, route="/ok", method="GET", status="200") == 2
        assert samples.value("http_requests_in_progress") == 0
    finally:
        server.stop()


@pytest.mark.parametrize("runner", [{"access_log": None}, {"handler_cancellation": True}])
def test_a_stream_the_client_resets_is_one_request_with_499(runner):
    """Both ways of recording (the access logger, the wrapped entry point) agree."""
    server = ThreadServer(make_app(), **runner)
    try:
        with socket.create_connection(("127.0.0.1", server.port)) as client:
            client.sendall(b"GET /slow-stream HTTP/1.1\r\nHost: x\r\n\r\n")
            assert b"200 OK" in client.recv(4096)
            # A reset (RST), as a browser tab closed mid-download sends.
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        samples = wait_for(lambda: scrape(server.url),
                           lambda s: s.get(COUNT, route="/slow-stream", status="499") >= 1)
        assert samples.value(COUNT, route="/slow-stream", method="GET", status="499") == 1
        assert samples.get("http_exceptions_total", route="/slow-stream") == 0
        wait_for(lambda: scrape(server.url),
                 lambda s: s.value("http_requests_in_progress") == 0)
        assert scrape(server.url).value("http_requests_in_progress") == 0
    finally:
        server.stop()
