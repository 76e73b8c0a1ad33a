"""Browser-side API timings: batches posted to a real service's exporter."""

from __future__ import annotations

import json

import httpx
import pytest

from promflux.client_timings import MAX_ENTRIES, BatchError, parse_batch

from .conftest import scrape

pytestmark = pytest.mark.compat

ROUTES = frozenset({"/items/{item_id}", "/readings/{sensor}"})
NAME = "http_client_request_duration_seconds"


def batch(*entries: dict) -> bytes:
    return json.dumps({"timings": list(entries)}).encode()


def entry(route: str = "/items/{item_id}", method: str = "GET", status: object = 200,
          duration_ms: object = 12.5) -> dict:
    return {"route": route, "method": method, "status": status, "duration_ms": duration_ms}


def test_parse_batch_maps_unknown_routes_and_converts_units():
    timings = parse_batch(batch(entry(), entry("/admin/secret?id=7", "POST", 0, 3000)), ROUTES)
    assert timings == [("/items/{item_id}", "GET", "200", 0.0125),
                       ("<unmatched>", "POST", "0", 3.0)]
    assert parse_batch(batch(), ROUTES) == []


@pytest.mark.parametrize("body, why", [
    (b"not json", "not JSON"),
    (b"[1, 2]", '"timings" list'),
    (json.dumps({"timings": {}}).encode(), '"timings" list'),
    (batch("x"), "timings[0] is not an object"),
    (batch(entry(route=7)), "route must be a string"),
    (batch(entry(method="BREW")), "method must be one of"),
    (batch(entry(status="200")), "status must be an integer"),
    (batch(entry(status=True)), "status must be an integer"),
    (batch(entry(status=700)), "status must be an integer"),
    (batch(entry(duration_ms=-1)), "duration_ms must be a number"),
    (batch(entry(duration_ms="5")), "duration_ms must be a number"),
    (b'{"timings": [{"route": "/", "method": "GET", "status": 200, "duration_ms": NaN}]}',
     "duration_ms must be a number"),
    (batch(entry(duration_ms=1e12)), "duration_ms must be a number"),
    (batch(*[entry()] * (MAX_ENTRIES + 1)), f"more than {MAX_ENTRIES}"),
    (b" " * 70_000, "body over"),
])
def test_bad_batches_are_refused_whole(body, why):
    with pytest.raises(BatchError, match=None) as error:
        parse_batch(body, ROUTES)
    assert why in str(error.value)


def test_fastapi_service_records_good_batches_and_refuses_bad_ones(fastapi_service):
    check_service(fastapi_service, "/items/{item_id}")


def test_aiohttp_service_records_good_batches_and_refuses_bad_ones(aiohttp_service):
    check_service(aiohttp_service, "/readings/{sensor}")


def check_service(server, route: str) -> None:
    url = server.url + "/metrics/client-timings"
    script = httpx.get(server.url + "/metrics/promflux-fetch.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "promflux" in script.text

    good = batch(entry(route, duration_ms=40), entry(route, duration_ms=40),
                 entry("/no/such/{thing}", "POST", 503, 900))
    assert httpx.post(url, content=good).status_code == 204
    after_good = scrape(server.url)
    labels = {"service": after_good.find(NAME + "_count")[0][1]["service"]}
    assert after_good.value(NAME + "_count", route=route, method="GET", status="200",
                            **labels) == 2
    assert after_good.value(NAME + "_bucket", route=route, method="GET", status="200",
                            le="0.05", **labels) == 2
    assert after_good.value(NAME + "_count", route="<unmatched>", method="POST",
                            status="503", **labels) == 1

    half_bad = batch(entry(route), entry(route, status="oops"))
    refused = httpx.post(url, content=half_bad)
    assert refused.status_code == 400 and "timings[1].status" in refused.text
    assert httpx.post(url, content=b"{" * 70_000).status_code == 400
    assert httpx.get(url).status_code == 405
    after_bad = scrape(server.url)
    assert after_bad.find(NAME + "_count") == after_good.find(NAME + "_count")
    # The exporter's own endpoints are not counted as the service's requests.
    assert "/metrics/client-timings" not in after_bad.label_values(
        "http_request_duration_seconds_count", "route")
