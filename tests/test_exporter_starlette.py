"""Plain Starlette: custom 500 handlers, dynamic mounts, and the fallback placement."""

from __future__ import annotations

import httpx
import pytest

from .conftest import scrape, uvicorn_server

pytestmark = pytest.mark.compat

DURATION = "http_request_duration_seconds_count"
ERROR = "tests.apps.starlette_app.ThermostatError"


@pytest.mark.parametrize("kind", ["plain", "wrapped", "default-errors"])
def test_errors_templates_and_placement(kind):
    server = uvicorn_server("tests.apps.starlette_app:app", env={"STARLETTE_KIND": kind})
    try:
        with httpx.Client(base_url=server.url) as client:
            for room in ("kitchen", "attic"):
                assert client.get(f"/rooms/{room}/temperature").status_code == 200
                assert client.get(f"/zones/north/rooms/{room}").status_code == 200
            failed = client.get("/fail")
        # Excluded from metrics, and it fails (a new connection: after an unhandled
        # exception the server closes the old one).
        health = httpx.get(server.url + "/healthz")
        if kind == "default-errors":
            assert (failed.status_code, failed.text) == (500, "Internal Server Error")
            assert (health.status_code, health.text) == (500, "Internal Server Error")
        else:  # the application's own 500 handler still answers, excluded paths included
            assert failed.status_code == 503 and failed.json() == {"error": "ThermostatError"}
            assert health.status_code == 503 and health.json() == {"error": "ThermostatError"}
        samples = scrape(server.url)
        assert samples.value(DURATION, route="/rooms/{room}/temperature", method="GET",
                             status="200") == 2
        assert samples.value(DURATION, route="/zones/{zone}/rooms/{room}", method="GET",
                             status="200") == 2
        # The status the client got, and the exception by type.
        status = "500" if kind == "default-errors" else "503"
        assert samples.value(DURATION, route="/fail", method="GET", status=status) == 1
        assert samples.value("http_exceptions_total", route="/fail", exception=ERROR) == 1
        assert "/healthz" not in samples.label_values(DURATION, "route")
        assert samples.value("http_requests_in_progress") == 0
        assert "ThermostatError" in server.output()  # still raised to the server
    finally:
        server.stop()


def test_a_private_registry_still_shows_every_request_metric():
    # registry=None: the metrics get a registry of their own, not none at all.
    server = uvicorn_server("tests.apps.starlette_app:app", env={"PRIVATE_REGISTRY": "1"})
    try:
        assert httpx.get(server.url + "/rooms/den/temperature").status_code == 200
        samples = scrape(server.url)
        assert samples.value(DURATION, route="/rooms/{room}/temperature", method="GET",
                             status="200") == 1
        assert samples.value("http_requests_in_progress") == 0
    finally:
        server.stop()


def test_buckets_of_the_services_choosing():
    server = uvicorn_server("tests.apps.starlette_app:app",
                            env={"BUCKETS": "0.0005,0.001,0.002,0.5"})
    try:
        assert httpx.get(server.url + "/rooms/den/temperature").status_code == 200
        bounds = scrape(server.url).label_values("http_request_duration_seconds_bucket", "le")
        assert bounds == {"0.0005", "0.001", "0.002", "0.5", "+Inf"}
    finally:
        server.stop()
