"""Several instrumented applications in one process, as app factories and test suites make
them, on real servers: each works, their counts are exact and add up per service; one
application instrumented twice is a clear error."""

from __future__ import annotations

import httpx
import pytest
from aiohttp import web
from fastapi import FastAPI

from promflux import exporter

from .conftest import aiohttp_server, scrape, uvicorn_server

pytestmark = pytest.mark.compat

DURATION = "http_request_duration_seconds_count"


def test_fastapi_apps_made_by_a_factory_share_one_registry():
    server = uvicorn_server("tests.apps.factory_app:factory_fastapi", "--factory")
    try:
        for _ in range(3):
            assert httpx.get(server.url + "/alpha/x").json() == {"service": "alpha"}
        for _ in range(2):
            assert httpx.get(server.url + "/beta/x").json() == {"service": "beta"}
        for page in ("/alpha", "/beta"):  # one registry: both pages show both services
            samples = scrape(server.url + page)
            assert samples.value(DURATION, service="alpha", route="/x", status="200") == 3
            assert samples.value(DURATION, service="beta", route="/x", status="200") == 2
            assert samples.value("http_requests_in_progress", service="alpha") == 0
            assert {s for _, labels, _ in samples.find("service_cpu_seconds_total")
                    for s in [labels["service"]]} == {"alpha", "beta"}
        assert "Traceback" not in server.output()
    finally:
        server.stop()


def test_the_third_aiohttp_app_of_a_factory_counts_exactly():
    server = aiohttp_server("tests.apps.factory_app:factory_aiohttp")
    try:
        for _ in range(4):
            assert httpx.get(server.url + "/x").status_code == 200
        samples = scrape(server.url)
        assert samples.value(DURATION, service="gamma", route="/x", status="200") == 4
    finally:
        server.stop()


@pytest.mark.parametrize("make", [FastAPI, web.Application])
def test_instrumenting_one_app_twice_says_what_to_do(make):
    from prometheus_client import CollectorRegistry

    app = make()
    exporter.instrument(app, service="once", registry=CollectorRegistry())
    with pytest.raises(RuntimeError, match="already instrumented"):
        exporter.instrument(app, service="once", registry=CollectorRegistry())


def test_other_buckets_on_a_shared_registry_say_what_to_do():
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    exporter.instrument(FastAPI(), service="a", registry=registry)
    with pytest.raises(ValueError, match="registry=prometheus_client.CollectorRegistry"):
        exporter.instrument(FastAPI(), service="b", registry=registry, buckets=[0.1, 1.0])
