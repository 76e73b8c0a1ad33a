"""Each framework internal the exporter hooks into, missing or changed as a new release
might make it, or turned off with PROMFLUX_NO_HOOKS: the exporter takes the public path,
says so once (naming the library and its version), and every count stays exact. Real
servers, real traffic: matched routes, a sub-app or mount, an included router, 404s and an
unhandled exception."""

from __future__ import annotations

import httpx
import pytest
from promflux.exporter.compat import HOOKS

from promflux.labels import UNMATCHED

from .conftest import Samples, aiohttp_server, scrape, uvicorn_server

pytestmark = pytest.mark.compat

COUNT = "http_request_duration_seconds_count"
WARNING = "taking the public path instead"


def deltas(before: Samples, after: Samples, keys: list[tuple[str, str, str]]) -> dict:
    return {k: after.get(COUNT, route=k[0], method=k[1], status=k[2])
            - before.get(COUNT, route=k[0], method=k[1], status=k[2]) for k in keys}


AIOHTTP_TRAFFIC = [("GET", "/readings/hall", 3), ("POST", "/readings", 2), ("GET", "/boom", 1),
                   ("GET", "/no/such/path", 2), ("GET", "/v2/devices/7", 2)]
AIOHTTP_EXPECTED = {("/readings/{sensor}", "GET", "200"): 3, ("/readings", "POST", "201"): 2,
                    ("/boom", "GET", "500"): 1, (UNMATCHED, "GET", "404"): 2,
                    ("/v2/devices/{device_id}", "GET", "200"): 2}


@pytest.mark.parametrize(("env", "warned"), [
    ({"CHANGED_INTERNALS": "aiohttp.handle_error"}, "aiohttp.access_log"),
    ({"CHANGED_INTERNALS": "aiohttp.handle_error,aiohttp.entry_point"}, "both"),
    ({"CHANGED_INTERNALS": "aiohttp.add_subapp"}, "aiohttp.add_subapp"),
    ({"CHANGED_INTERNALS": "aiohttp.request_fields"}, "aiohttp.request_fields"),
    ({"PROMFLUX_NO_HOOKS": "aiohttp.request_fields"}, None),
    ({"PROMFLUX_NO_HOOKS": "aiohttp.access_log"}, None),
    ({"PROMFLUX_NO_HOOKS": "prometheus_client.histogram_values"}, None),
    ({"PROMFLUX_NO_HOOKS": "all"}, None),
], ids=lambda v: str(v))
def test_aiohttp_without_a_hook_counts_exactly(env, warned):
    server = aiohttp_server("tests.apps.aiohttp_app:create_app", env)
    try:
        before = scrape(server.url)
        for method, path, n in AIOHTTP_TRAFFIC:
            for _ in range(n):
                httpx.request(method, server.url + path, content=b"{}" if method == "POST"
                              else None)
        httpx.post(server.url + "/queue/roundtrip", params={"wait_ms": 30})
        after = scrape(server.url)
        assert deltas(before, after, list(AIOHTTP_EXPECTED)) == AIOHTTP_EXPECTED
        assert after.get("http_exceptions_total", route="/boom") - before.get(
            "http_exceptions_total", route="/boom") == 1
        waits = (after.value("queue_wait_seconds_count", queue="readings")
                 - before.get("queue_wait_seconds_count", queue="readings"))
        assert waits == 1
        assert after.value("queue_wait_seconds_bucket", queue="readings", le="0.025") == 0
        assert after.value("queue_wait_seconds_sum", queue="readings") >= 0.03
        assert after.value("http_requests_in_progress") == 0
        assert "/metrics" not in after.label_values(COUNT, "route")
        output = server.output()
        assert (WARNING in output) == (warned is not None), output[-3000:]
        if warned:
            assert "aiohttp 3." in output  # the library and its version
        if warned in HOOKS:
            assert HOOKS[warned][1] in output  # and what it lacks
    finally:
        server.stop()


FASTAPI_TRAFFIC = [("GET", "/items/1", 3), ("POST", "/items", 2), ("GET", "/boom", 1),
                   ("GET", "/no/such/path", 2), ("GET", "/api/v1/users/5", 2),
                   ("GET", "/sub/hello/x", 1)]
FASTAPI_EXPECTED = {("/items/{item_id}", "GET", "200"): 3, ("/items", "POST", "201"): 2,
                    ("/boom", "GET", "500"): 1, (UNMATCHED, "GET", "404"): 2,
                    ("/api/v1/users/{user_id}", "GET", "200"): 2,
                    ("/sub/hello/{name}", "GET", "200"): 1}


@pytest.mark.parametrize(("env", "warned"), [
    ({"CHANGED_INTERNALS": "starlette.build_stack"}, True),
    ({"CHANGED_INTERNALS": "starlette.error_middleware"}, True),
    ({"PROMFLUX_NO_HOOKS": "all"}, False),
], ids=lambda v: str(v))
def test_fastapi_without_a_hook_counts_exactly(env, warned):
    server = uvicorn_server("tests.apps.fastapi_app:app", env=env)
    try:
        before = scrape(server.url)
        for method, path, n in FASTAPI_TRAFFIC:
            for _ in range(n):
                httpx.request(method, server.url + path)
        after = scrape(server.url)
        assert deltas(before, after, list(FASTAPI_EXPECTED)) == FASTAPI_EXPECTED
        assert after.get("http_exceptions_total", route="/boom") - before.get(
            "http_exceptions_total", route="/boom") == 1
        assert after.value("http_requests_in_progress") == 0
        output = server.output()
        assert (WARNING in output) == warned, output[-3000:]
        if warned:
            assert "starlette 0." in output or "starlette 1." in output
    finally:
        server.stop()
