"""Browser-side API timings: batches posted to a real service's exporter."""

from __future__ import annotations

import json

import httpx
import pytest

from promflux.timing_batches import (
    MAX_ENTRIES,
    MAX_SERIES,
    STATUSES,
    BatchError,
    admit,
    parse_batch,
)

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
    (batch(entry(status="200")), "status must be 0"),
    (batch(entry(status=True)), "status must be 0"),
    (batch(entry(status=700)), "status must be 0"),
    (batch(entry(duration_ms=-1)), "duration_ms must be a number"),
    (batch(entry(duration_ms="5")), "duration_ms must be a number"),
    (b'{"timings": [{"route": "/", "method": "GET", "status": 200, "duration_ms": NaN}]}',
     "duration_ms must be a number"),
    (batch(entry(duration_ms=1e12)), "duration_ms must be a number"),
    (batch(*[entry()] * (MAX_ENTRIES + 1)), f"more than {MAX_ENTRIES}"),
    (b" " * 70_000, "body over"),
    (b"[" * 60_000, "not JSON"),  # nested past the parser's depth: a 400, not a 500
    (json.dumps({"timings": [entry()]}).encode()[:-2] + b"[" * 50_000 + b"]}", "not JSON"),
])
def test_bad_batches_are_refused_whole(body, why):
    with pytest.raises(BatchError, match=None) as error:
        parse_batch(body, ROUTES)
    assert why in str(error.value)


def test_statuses_outside_the_common_set_are_recorded_by_class():
    timings = parse_batch(batch(entry(status=418), entry(status=599), entry(status=103),
                                entry(status=404)), ROUTES)
    assert [t[2] for t in timings] == ["4xx", "5xx", "1xx", "404"]


def test_a_process_records_a_bounded_number_of_series():
    seen: set = set()
    combos = [(m, s) for m in ("GET", "POST", "PUT", "PATCH") for s in (200, 201, 404, 500, 503)]
    for method, status in combos:  # 4 x 5 = 20 series
        admit(parse_batch(batch(entry(method=method, status=status)), ROUTES), seen, limit=20)
    assert len(seen) == 20
    with pytest.raises(BatchError, match="over 20 distinct") as refused:
        admit(parse_batch(batch(entry(method="OPTIONS")), ROUTES), seen, limit=20)
    assert refused.value.status == 429 and len(seen) == 20
    admit(parse_batch(batch(entry()), ROUTES), seen, limit=20)  # known series still go in


def test_a_beacon_flood_leaves_metrics_small():
    from .conftest import uvicorn_server

    server = uvicorn_server("tests.apps.fastapi_app:app")
    try:
        check_flood(server)
    finally:
        server.stop()


def check_flood(fastapi_service) -> None:
    url = fastapi_service.url + "/metrics/client-timings"
    before = len(httpx.get(fastapi_service.url + "/metrics").content)
    codes = set()
    for status in range(100, 600):  # 500 statuses x 7 methods, as an attacker would
        entries = [entry(method=m, status=status) for m in
                   ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")]
        codes.add(httpx.post(url, content=batch(*entries)).status_code)
    after = scrape(fastapi_service.url)
    series = after.find(NAME + "_count")
    assert codes <= {204, 429} and len(series) <= MAX_SERIES
    assert {s[1]["status"] for s in series} <= {*map(str, STATUSES), "1xx", "2xx", "3xx",
                                                  "4xx", "5xx"}
    size = len(httpx.get(fastapi_service.url + "/metrics").content)
    assert size - before < 8 * 1024 * 1024, size  # 1,000 histograms at most, not 100 MB


def test_origin_allow_list_and_auth_guard_the_beacon():
    from .conftest import uvicorn_server

    server = uvicorn_server("tests.apps.fastapi_app:app", env={
        "BROWSER_ORIGINS": "https://dashboard.example", "BROWSER_AUTH": "1",
        "METRICS_TOKEN": "t0ken"})
    try:
        url = server.url + "/metrics/client-timings"
        good = batch(entry())
        token = {"Authorization": "Bearer t0ken"}
        assert httpx.post(url, content=good, headers={
            "Origin": "https://dashboard.example"}).status_code == 401
        assert httpx.post(url, content=good, headers={
            **token, "Origin": "https://evil.example"}).status_code == 403
        assert httpx.post(url, content=good, headers=token).status_code == 403  # no Origin
        assert httpx.post(url, content=good, headers={
            **token, "Origin": "https://dashboard.example"}).status_code == 204
    finally:
        server.stop()


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
