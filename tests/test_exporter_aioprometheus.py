"""Every aioprometheus metric type on promflux's /metrics, on both frameworks, served by
real servers: the values are those the observations make, and the same as aioprometheus's
own rendering of its registry."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import Server, aiohttp_server, scrape, uvicorn_server

pytestmark = pytest.mark.compat


@pytest.fixture(scope="module", params=["fastapi", "aiohttp"])
def service(request: pytest.FixtureRequest):
    server: Server = (uvicorn_server("tests.apps.aioprom_app:create_fastapi", "--factory")
                      if request.param == "fastapi"
                      else aiohttp_server("tests.apps.aioprom_app:create_aiohttp"))
    yield server
    server.stop()


def test_every_type_with_and_without_labels_shows_what_was_observed(service):
    for _ in range(2):
        assert httpx.post(service.url + "/observe").status_code == 200
    page = httpx.get(service.url + "/metrics")
    assert page.status_code == 200
    found = scrape(service.url)

    class Exact:  # a sample whose labels are exactly these (an unlabelled one has none)
        @staticmethod
        def value(name: str, **labels: str) -> float:
            hits = [v for n, lab, v in found.find(name) if n == name and lab == labels]
            assert len(hits) == 1, (name, labels, found.find(name))
            return hits[0]

    samples = Exact()
    # Counter: two rounds of the observations.
    assert samples.value("legacy_events_total", room="hall") == 4
    assert samples.value("legacy_events_total", room="attic") == 2
    assert samples.value("legacy_events_total") == 2
    # Gauge, with its const label: the last value set.
    assert samples.value("legacy_temperature_celsius", room="hall", plant="north") == 2.0
    assert samples.value("legacy_temperature_celsius", plant="north") == 0.7
    # Summary: count, sum and its quantiles.
    assert samples.value("legacy_payload_bytes_count", room="hall") == 4
    assert samples.value("legacy_payload_bytes_sum", room="hall") == pytest.approx(4.6)
    assert samples.value("legacy_payload_bytes", room="attic", quantile="0.5") == 0.02
    assert samples.value("legacy_payload_bytes_count") == 2
    # Histogram: cumulative buckets, count and sum.
    hall = {"room": "hall", "plant": "north"}
    assert [samples.value("legacy_handling_seconds_bucket", le=le, **hall)
            for le in ("0.05", "0.5", "1.0", "+Inf")] == [0, 2, 2, 4]
    assert samples.value("legacy_handling_seconds_count", **hall) == 4
    assert samples.value("legacy_handling_seconds_sum", **hall) == pytest.approx(4.6)
    assert samples.value("legacy_handling_seconds_bucket", le="1.0", plant="north") == 2
    # Declared with their types, beside promflux's own request histogram.
    types = {f.name: f.type for f in text_string_to_metric_families(page.text)}
    assert (types["legacy_events"], types["legacy_temperature_celsius"],
            types["legacy_payload_bytes"], types["legacy_handling_seconds"]) == (
        "counter", "gauge", "summary", "histogram")
    assert types["http_request_duration_seconds"] == "histogram"
