"""The exporter on a real aiohttp service (HTTP, WebSocket, sub-app, aioprometheus)."""

from __future__ import annotations

import asyncio
import time
import uuid

import aiohttp
import httpx
import pytest

from .conftest import Samples, scrape, wait_for

pytestmark = pytest.mark.compat

DURATION = "http_request_duration_seconds"


def count(samples: Samples, route: str, method: str = "GET", status: str = "200") -> float:
    return samples.get(DURATION + "_count", route=route, method=method, status=status)


def test_routes_listed_from_start_with_canonical_paths(aiohttp_service):
    samples = scrape(aiohttp_service.url)
    routes = samples.label_values(DURATION + "_count", "route")
    assert {"/readings/{sensor}", "/readings", "/boom", "/v2/devices/{device_id}"} <= routes
    assert "/metrics" not in routes and "/health" not in routes
    assert samples.value(DURATION + "_count", route="/readings", method="POST",
                         status="200") == 0
    assert samples.label_values(DURATION + "_count", "service") == {"ingest"}


def test_latency_buckets_and_templates(aiohttp_service):
    before = scrape(aiohttp_service.url)
    for sensor in ("kitchen", "hall", "garage"):
        assert httpx.get(f"{aiohttp_service.url}/readings/{sensor}",
                         params={"delay_ms": 105}).status_code == 200
    assert httpx.post(aiohttp_service.url + "/readings", content=b"{}").status_code == 201
    assert httpx.get(aiohttp_service.url + "/v2/devices/17").status_code == 200
    after = scrape(aiohttp_service.url)
    route = "/readings/{sensor}"
    assert count(after, route) - count(before, route) == 3
    for le, delta in (("0.1", 0), ("0.15", 3)):
        assert after.value(DURATION + "_bucket", route=route, method="GET", status="200",
                           le=le) - before.value(DURATION + "_bucket", route=route,
                                                 method="GET", status="200", le=le) == delta
    assert count(after, "/readings", "POST", "201") - count(before, "/readings", "POST",
                                                            "201") == 1
    assert count(after, "/v2/devices/{device_id}") - count(before,
                                                           "/v2/devices/{device_id}") == 1


def test_404_flood_and_unknown_methods(aiohttp_service):
    before = scrape(aiohttp_service.url)
    with httpx.Client(base_url=aiohttp_service.url) as client:
        for _ in range(100):
            assert client.get(f"/{uuid.uuid4().hex}").status_code == 404
        # Newer aiohttp rejects unknown methods in its parser (400, before any app code).
        brew = client.request("BREW", "/readings/x").status_code
        assert brew in (400, 405)
        assert client.get("/" + "y" * 6000).status_code == 404
    after = scrape(aiohttp_service.url)
    assert count(after, "<unmatched>", status="404") - count(before, "<unmatched>",
                                                             status="404") == 101
    if brew == 405:
        assert count(after, "<unmatched>", "OTHER", "405") - count(
            before, "<unmatched>", "OTHER", "405") == 1
    assert after.label_values(DURATION + "_count", "route") <= before.label_values(
        DURATION + "_count", "route") | {"<unmatched>"}
    assert after.label_values(DURATION + "_count", "method") <= {"GET", "POST", "OTHER"}


def test_exception_is_counted_and_still_500(aiohttp_service):
    before = scrape(aiohttp_service.url)
    assert httpx.get(aiohttp_service.url + "/boom").status_code == 500
    after = scrape(aiohttp_service.url)
    assert count(after, "/boom", status="500") - count(before, "/boom", status="500") == 1
    name = "tests.apps.aiohttp_app.SensorError"
    assert after.value("http_exceptions_total", route="/boom", exception=name) - before.get(
        "http_exceptions_total", route="/boom", exception=name) == 1


def test_websocket_session(aiohttp_service):
    before = scrape(aiohttp_service.url)

    async def session() -> list[str]:
        async with aiohttp.ClientSession() as client:
            async with client.ws_connect(aiohttp_service.url + "/ws") as ws:
                replies = []
                for text in ("t=21.5", "t=21.6"):
                    await ws.send_str(text)
                    replies.append((await ws.receive()).data)
                mid = scrape(aiohttp_service.url)
                assert mid.value("websocket_connections_active", route="/ws") == 1
                assert mid.value("http_requests_in_progress") == 0
                return replies

    assert asyncio.run(session()) == ["t=21.5", "t=21.6"]
    # The server ends the handler just after the closing handshake: allow it a moment.
    after = wait_for(lambda: scrape(aiohttp_service.url), lambda s: s.value(
        "websocket_connections_active", route="/ws") == 0)
    for name, delta in [("websocket_connections_opened_total", 1),
                        ("websocket_messages_received_total", 2),
                        ("websocket_messages_sent_total", 2),
                        ("websocket_connection_duration_seconds_count", 1)]:
        assert after.value(name, route="/ws") - before.get(name, route="/ws") == delta, name
    # The upgrade is a connection, not a request with latency.
    assert count(after, "/ws", status="101") == 0


def test_events_queue_and_aioprometheus_metrics(aiohttp_service):
    before = scrape(aiohttp_service.url)
    httpx.post(aiohttp_service.url + "/events/reading", params={"n": 5})
    started = time.perf_counter()
    httpx.post(aiohttp_service.url + "/queue/roundtrip", params={"wait_ms": 150})
    roundtrip = time.perf_counter() - started  # the queue wait lies within it
    for _ in range(4):
        httpx.get(aiohttp_service.url + "/legacy")
    after = scrape(aiohttp_service.url)
    assert after.value("events_processed_total", kind="reading") - before.get(
        "events_processed_total", kind="reading") == 5
    def waits(samples, le: str) -> float:
        return samples.value("queue_wait_seconds_bucket", queue="readings", le=le)

    assert waits(after, "+Inf") - waits(before, "+Inf") == 1
    assert waits(after, "0.1") == 0  # it waited 150 ms
    in_bucket = waits(after, "0.25") - waits(before, "0.25")
    if roundtrip <= 0.25:  # (a loaded machine may make the whole round trip slower)
        assert in_bucket == 1
    # aioprometheus's own counter is on the same /metrics.
    assert after.value("legacy_requests_total", path="/legacy") - before.get(
        "legacy_requests_total", path="/legacy") == 4
    assert count(after, "/legacy") - count(before, "/legacy") == 4


def test_an_instrumented_sub_app_records_its_requests():
    from .conftest import aiohttp_server

    server = aiohttp_server("tests.apps.aiohttp_app:create_instrumented_subapp")
    try:
        for device in ("a", "b", "c"):
            assert httpx.get(f"{server.url}/api/devices/{device}").status_code == 200
        assert httpx.get(server.url + "/health").status_code == 200  # not the sub-app's
        samples = scrape(server.url + "/api")
        assert count(samples, "/api/devices/{device_id}") == 3
        assert samples.label_values(DURATION + "_count", "route") == {
            "/api/devices/{device_id}"}
    finally:
        server.stop()


@pytest.mark.parametrize("path", ["/readings/s9?delay_ms=300", "/readings"])
def test_client_disconnect_is_a_499_as_on_fastapi(aiohttp_service, path):
    import socket

    route = "/readings/{sensor}" if "delay" in path else "/readings"
    method = "GET" if "delay" in path else "POST"
    before = scrape(aiohttp_service.url)
    with socket.create_connection(("127.0.0.1", aiohttp_service.port)) as raw:
        if method == "GET":
            raw.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        else:  # the body never arrives: the handler is reading it when the client goes
            raw.sendall(b"POST /readings HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
                        b"Content-Type: application/json\r\n\r\n{\"sensor\":")

    def added(samples) -> float:
        return sum(samples.get(DURATION + "_count", route=route, method=method, status=s)
                   - before.get(DURATION + "_count", route=route, method=method, status=s)
                   for s in ("200", "201", "400", "499", "500"))

    after = wait_for(lambda: scrape(aiohttp_service.url), lambda s: added(s) >= 1)
    assert added(after) == 1
    assert after.get(DURATION + "_count", route=route, method=method, status="499") - \
        before.get(DURATION + "_count", route=route, method=method, status="499") == 1
    exceptions = sum(v for _, labels, v in after.find("http_exceptions_total")
                     if labels.get("route") == route)
    assert exceptions == sum(v for _, labels, v in before.find("http_exceptions_total")
                             if labels.get("route") == route)
