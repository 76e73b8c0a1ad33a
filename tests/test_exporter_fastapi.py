"""The exporter on a real uvicorn + FastAPI service, scraped over HTTP."""

from __future__ import annotations

import asyncio
import gzip
import socket
import time
import uuid

import aiohttp
import httpx
import pytest

from .conftest import Samples, scrape, uvicorn_server, wait_for

pytestmark = pytest.mark.compat

DURATION = "http_request_duration_seconds"


def count(samples: Samples, route: str, method: str = "GET", status: str = "200") -> float:
    return samples.get(DURATION + "_count", route=route, method=method, status=status)


def test_metrics_page_is_plain_text_readable_in_a_browser(fastapi_service):
    response = httpx.get(fastapi_service.url + "/metrics", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "content-disposition" not in response.headers
    assert "# TYPE http_request_duration_seconds histogram" in response.text


def test_openmetrics_and_gzip_are_negotiated(fastapi_service):
    om = httpx.get(fastapi_service.url + "/metrics",
                   headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    assert om.text.rstrip().endswith("# EOF")
    raw = httpx.get(fastapi_service.url + "/metrics", headers={"Accept-Encoding": "gzip"})
    assert raw.headers["content-encoding"] == "gzip"
    # httpx decodes transparently; check the bytes on the wire too.
    with httpx.stream("GET", fastapi_service.url + "/metrics",
                      headers={"Accept-Encoding": "gzip"}) as stream:
        wire = b"".join(stream.iter_raw())
    assert b"http_request_duration_seconds" in gzip.decompress(wire)


def test_every_route_is_listed_with_zero_counts_from_start(fastapi_service):
    samples = scrape(fastapi_service.url)
    routes = samples.label_values(DURATION + "_count", "route")
    assert {"/items/{item_id}", "/api/v1/users/{user_id}", "/sub/hello/{name}", "/boom",
            "/background", "/events/{kind}", "/queue/roundtrip"} <= routes
    assert samples.value(DURATION + "_count", route="/items", method="POST", status="201") >= 0
    assert "/metrics" not in routes and "/health" not in routes
    # WebSocket routes are listed as connections, not as HTTP routes.
    assert "/ws" not in routes
    assert samples.value("websocket_connections_opened_total", route="/ws") >= 0


def test_latency_lands_in_the_right_bucket_by_route_template(fastapi_service):
    before = scrape(fastapi_service.url)
    client_seconds = []  # each request as the client saw it: never less than the server
    for item in range(5):
        started = time.perf_counter()
        assert httpx.get(f"{fastapi_service.url}/items/{item}",
                         params={"delay_ms": 105}).status_code == 200
        client_seconds.append(time.perf_counter() - started)
    after = scrape(fastapi_service.url)
    route = "/items/{item_id}"

    def bucket(s: Samples, le: str) -> float:
        return s.value(DURATION + "_bucket", route=route, method="GET", status="200", le=le)

    assert count(after, route) - count(before, route) == 5
    # Every request waited 105 ms on the server: none is at or under 0.1 s. The server's
    # time is within the client's, so at least as many as the client saw under 0.15 s are
    # at or under 0.15 s (all five on an idle machine; a loaded one may slow some).
    assert bucket(after, "0.1") - bucket(before, "0.1") == 0
    fast = sum(s <= 0.15 for s in client_seconds)
    assert 5 >= bucket(after, "0.15") - bucket(before, "0.15") >= fast
    added = (after.value(DURATION + "_sum", route=route, method="GET", status="200")
             - before.value(DURATION + "_sum", route=route, method="GET", status="200"))
    assert 0.525 <= added <= sum(client_seconds)
    # No raw path ever becomes a label value.
    assert not any(r.startswith("/items/") and "{" not in r
                   for r in after.label_values(DURATION + "_count", "route"))


def test_router_prefix_and_mounted_subapp_templates(fastapi_service):
    before = scrape(fastapi_service.url)
    assert httpx.get(fastapi_service.url + "/api/v1/users/42").status_code == 200
    assert httpx.get(fastapi_service.url + "/sub/hello/ada").status_code == 200
    assert httpx.post(fastapi_service.url + "/items").status_code == 201
    after = scrape(fastapi_service.url)
    for route, method, status in [("/api/v1/users/{user_id}", "GET", "200"),
                                  ("/sub/hello/{name}", "GET", "200"),
                                  ("/items", "POST", "201")]:
        assert count(after, route, method, status) - count(before, route, method, status) == 1


def test_404_flood_collapses_into_one_label_value(fastapi_service):
    before = scrape(fastapi_service.url)
    with httpx.Client(base_url=fastapi_service.url) as client:
        for _ in range(200):
            client.get(f"/{uuid.uuid4().hex}/{uuid.uuid4().hex}")
        for _ in range(20):
            client.get(f"/sub/{uuid.uuid4().hex}")  # 404 inside the mounted app
    after = scrape(fastapi_service.url)
    assert count(after, "<unmatched>", status="404") - count(before, "<unmatched>",
                                                             status="404") == 220
    assert after.label_values(DURATION + "_count", "route") == before.label_values(
        DURATION + "_count", "route") | {"<unmatched>"}


def test_unhandled_exception_counts_500_and_type(fastapi_service):
    before = scrape(fastapi_service.url)
    response = httpx.get(fastapi_service.url + "/boom")
    assert response.status_code == 500
    after = scrape(fastapi_service.url)
    assert count(after, "/boom", status="500") - count(before, "/boom", status="500") == 1
    name = "tests.apps.fastapi_app.DeviceOfflineError"
    assert after.value("http_exceptions_total", route="/boom", exception=name) - before.get(
        "http_exceptions_total", route="/boom", exception=name) == 1


def test_background_tasks_are_not_latency(fastapi_service):
    before = scrape(fastapi_service.url)
    assert httpx.get(fastapi_service.url + "/background").status_code == 200
    after = scrape(fastapi_service.url)
    route = "/background"
    delta = (after.value(DURATION + "_bucket", route=route, method="GET", status="200",
                         le="0.25")
             - before.value(DURATION + "_bucket", route=route, method="GET", status="200",
                            le="0.25"))
    assert delta == 1  # the 0.4 s background task ran after the response


def test_events_and_queue_waits(fastapi_service):
    before = scrape(fastapi_service.url)
    httpx.post(fastapi_service.url + "/events/device_update", params={"n": 7})
    httpx.post(fastapi_service.url + "/events/device_update", params={"n": 3})
    httpx.post(fastapi_service.url + "/queue/roundtrip", params={"wait_ms": 150})
    after = scrape(fastapi_service.url)
    assert after.value("events_processed_total", kind="device_update") - before.get(
        "events_processed_total", kind="device_update") == 10
    wait = "queue_wait_seconds"
    assert after.value(wait + "_count", queue="jobs") - before.value(
        wait + "_count", queue="jobs") == 1
    assert after.value(wait + "_bucket", queue="jobs", le="0.1") == before.value(
        wait + "_bucket", queue="jobs", le="0.1")
    assert after.value(wait + "_bucket", queue="jobs", le="0.25") - before.value(
        wait + "_bucket", queue="jobs", le="0.25") == 1
    assert after.value("queue_size", queue="jobs") == 0
    assert after.value("queue_size", queue="db_pool") == 3


def test_websocket_session(fastapi_service):
    before = scrape(fastapi_service.url)

    async def session() -> list[str]:
        async with aiohttp.ClientSession() as client:
            async with client.ws_connect(fastapi_service.url + "/ws") as ws:
                replies = []
                for text in ("a", "b", "c"):
                    await ws.send_str(text)
                    replies.append((await ws.receive()).data)
                mid = scrape(fastapi_service.url)
                assert mid.value("websocket_connections_active", route="/ws") == 1
                return replies

    assert asyncio.run(session()) == ["a", "b", "c"]
    # The server ends the handler just after the closing handshake: allow it a moment.
    after = wait_for(lambda: scrape(fastapi_service.url), lambda s: s.value(
        "websocket_connections_active", route="/ws") == 0)
    for name, delta in [("websocket_connections_opened_total", 1),
                        ("websocket_messages_received_total", 3),
                        ("websocket_messages_sent_total", 3),
                        ("websocket_connection_duration_seconds_count", 1)]:
        assert after.value(name, route="/ws") - before.get(name, route="/ws") == delta, name


def test_resources_are_reported(fastapi_service):
    samples = scrape(fastapi_service.url)
    assert samples.value("service_memory_rss_bytes", service="admin-api") > 10 * 2**20
    assert samples.value("service_threads", service="admin-api") >= 1
    assert samples.value("service_open_fds", service="admin-api") >= 3
    assert 0 < samples.value("service_disk_usage_percent", path="/") <= 100
    assert 0 < samples.value("system_memory_percent") <= 100
    assert samples.value("service_cpu_seconds_total", service="admin-api") > 0
    assert samples.value("service_cpu_limit_cores", service="admin-api") > 0
    assert samples.value("service_memory_limit_bytes", service="admin-api") > 0
    assert samples.value("system_cpu_busy_seconds_total", service="admin-api") > 0
    assert samples.value("http_requests_in_progress", service="admin-api") == 0


def test_bad_input_keeps_labels_bounded(fastapi_service):
    before = scrape(fastapi_service.url)
    with httpx.Client(base_url=fastapi_service.url) as client:
        assert client.get("/items/1/" + "x" * 8000).status_code == 404
        assert client.request("BREW", "/items/1").status_code == 405
        assert client.get("/items/%ff%fe").status_code == 422
    # Raw bytes that are not UTF-8 in the request line.
    with socket.create_connection(("127.0.0.1", fastapi_service.port)) as raw:
        raw.sendall(b"GET /caf\xe9/\xff HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert raw.recv(100).startswith(b"HTTP/1.1 ")
    after = scrape(fastapi_service.url)
    assert count(after, "/items/{item_id}", "OTHER", "405") - count(
        before, "/items/{item_id}", "OTHER", "405") == 1
    assert count(after, "/items/{item_id}", status="422") - count(
        before, "/items/{item_id}", status="422") == 1
    assert after.label_values(DURATION + "_count", "method") <= {"GET", "POST", "OTHER"}
    assert all(len(r) < 100 for r in after.label_values(DURATION + "_count", "route"))


def test_client_disconnect_mid_request_is_counted_once(fastapi_service):
    before = scrape(fastapi_service.url)
    with socket.create_connection(("127.0.0.1", fastapi_service.port)) as raw:
        raw.sendall(b"GET /items/9?delay_ms=300 HTTP/1.1\r\nHost: x\r\n\r\n")
    route = "/items/{item_id}"

    def added(after) -> float:
        return sum(count(after, route, status=s) - count(before, route, status=s)
                   for s in ("200", "499"))

    after = wait_for(lambda: scrape(fastapi_service.url), lambda a: added(a) >= 1)
    assert added(after) == 1
    assert after.value("http_requests_in_progress") == 0
    assert httpx.get(fastapi_service.url + "/items/1").status_code == 200


def test_root_path_keeps_templates():
    server = uvicorn_server("tests.apps.fastapi_app:app", "--root-path", "/api")
    try:
        httpx.get(server.url + "/items/5")
        samples = scrape(server.url)
        assert count(samples, "/items/{item_id}") == 1
        assert samples.get(DURATION + "_count", route="<unmatched>", status="404") == 0
    finally:
        server.stop()


def test_metrics_auth_and_broken_callback_never_break_the_service():
    server = uvicorn_server("tests.apps.fastapi_app:app",
                            env={"METRICS_TOKEN": "s3cret", "BROKEN_CALLBACK": "1"})
    try:
        denied = httpx.get(server.url + "/metrics")
        assert denied.status_code == 401
        assert denied.headers["www-authenticate"].startswith("Bearer")
        assert httpx.get(server.url + "/metrics",
                         headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.get(server.url + "/items/1").status_code == 200
        samples = scrape(server.url, Authorization="Bearer s3cret")
        assert count(samples, "/items/{item_id}") == 1
        assert samples.value("promflux_exporter_errors_total",
                             where="size_callback:broken") >= 1
        assert samples.value("queue_size", queue="db_pool") == 3
        assert "ZeroDivisionError" in server.output()
    finally:
        server.stop()


def test_client_gone_while_its_body_is_read_is_a_499_not_an_exception(fastapi_service):
    before = scrape(fastapi_service.url)
    with socket.create_connection(("127.0.0.1", fastapi_service.port)) as raw:
        raw.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhalf")

    def added(after) -> float:
        return sum(count(after, "/upload", "POST", s) - count(before, "/upload", "POST", s)
                   for s in ("201", "499", "500"))

    after = wait_for(lambda: scrape(fastapi_service.url), lambda a: added(a) >= 1)
    assert added(after) == 1
    assert count(after, "/upload", "POST", "499") - count(before, "/upload", "POST", "499") == 1
    assert not [s for s in after.find("http_exceptions_total") if s[1]["route"] == "/upload"]
