"""The bridge's status page in headless Chromium (Debian's), against the example stack."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from .browser import browser  # noqa: F401
from .conftest import ROOT, Samples, wait_for
from .stack import ExampleStack


@pytest.fixture(scope="module")
def stack(influxdb, tmp_path_factory):
    stack = ExampleStack(influxdb, "status_page", tmp_path_factory.mktemp("buffer"),
                         worker_calls_services=False)
    yield stack
    stack.stop()


def test_status_page_shows_every_target_and_the_stored_figures(stack, browser):  # noqa: F811
    stack.wait_for_baseline()
    for i in range(40):
        assert httpx.get(f"{stack.api.url}/api/devices/dev-{i % 12}").status_code == 200
    for i in range(10):
        httpx.get(f"{stack.api.url}/api/devices/ghost-{i}")  # 404s: not errors
    for i in range(15):
        httpx.post(f"{stack.ingest.url}/ingest/s{i}", json={"value": i})
    wait_for(lambda: stack.query('SELECT sum("requests") FROM "performance_metrics" WHERE '
                                 "\"endpoint\" = '_all' GROUP BY \"service\""),
             lambda s: {x["tags"]["service"]: x["values"][0][1] for x in s}
             == {"admin-api": 50, "ingest": 15}, timeout=30)
    p95 = {s["tags"]["service"]: s["values"][0][1] for s in stack.query(
        'SELECT last("p95_ms") FROM "performance_metrics" WHERE "endpoint" = \'_all\' '
        'GROUP BY "service"')}

    page = browser.new_page()
    page.goto(stack.bridge.url + "/")
    rows = page.locator("#targets tbody tr")
    assert rows.count() == 3  # admin-api, ingest and the worker
    for service in ("admin-api", "ingest"):
        row = page.locator(f'#targets tr[data-service="{service}"]')
        assert row.get_attribute("data-up") == "true"
        assert row.locator("td.up").inner_text() == "up"
        card = page.locator(f'section.service[data-service="{service}"]')
        shown = card.locator('.figure[data-figure="p95_ms"] .value').inner_text()
        assert shown == f"{p95[service]:,.1f} ms"
        assert card.locator('.figure[data-figure="p95_ms"]').get_attribute("data-level") == "ok"
        assert card.locator('.figure[data-figure="cpu_percent"] .value').inner_text().endswith(" %")
        assert card.locator("svg.chart polyline").count() == 3  # p95, requests, errors
    admin = page.locator('section.service[data-service="admin-api"]')
    errors = admin.locator('.figure[data-figure="error_rate_percent"] .value')
    assert errors.inner_text() == "0.00 %"
    # Per endpoint, the last 5 minutes, exact: 50 requests, 10 of them 404 (a 20 % 4xx rate).
    devices = admin.locator('table.endpoints tr[data-endpoint="GET /api/devices/{device_id}"]')
    assert devices.locator("td").nth(1).inner_text() == "50"
    assert devices.locator('[data-figure="client_error_rate_percent"]').inner_text() == "20.00 %"
    assert devices.locator('[data-figure="within"]').get_attribute("data-level") == "ok"
    # 4xx: no limit is configured for it, so it is not shown as judged ok.
    assert devices.locator('[data-figure="client_error_rate_percent"]').get_attribute(
        "data-level") == "unjudged"
    assert page.locator(".legend span").count() == 6
    charts(admin)
    # The README's screenshot, from this very page (it cannot go stale).
    page.screenshot(path=str(ROOT / "docs" / "status-page.png"), full_page=True)
    endpoint_page(page, devices, stack)
    page.goto(stack.bridge.url + "/")

    # The page refreshes itself through promflux-fetch.js and posts its own timings.
    first = page.locator("p.meta").inner_text()
    page.wait_for_function(f"document.querySelector('p.meta').innerText !== {first!r}",
                           timeout=10_000)
    assert page.locator("#targets tbody tr").count() == 3
    page.evaluate("fetch.promflux.flush()")
    name = "promflux_bridge_client_request_duration_seconds_count"
    counts = wait_for(lambda: Samples(httpx.get(stack.bridge.url + "/metrics").text),
                      lambda s: s.get(name, route="/", method="GET", status="200") >= 1)
    assert counts.get(name, route="/", method="GET", status="200") >= 1
    page.close()


def charts(card) -> None:
    """p95, requests/min and 5xx charts with axes, units, the limit and hover values."""
    assert card.locator("figure[data-chart]").count() == 3
    p95 = card.locator('figure[data-chart="p95"]')
    labels = p95.locator("text.y-label").all_text_contents()
    assert len(labels) == 3 and labels[0] == "0 ms" and all(x.endswith(" ms") for x in labels)
    assert p95.locator("text.x-label").all_text_contents() == ["−60 min", "−30 min", "now"]
    assert "limit 500 ms" in (p95.text_content() or "")
    hover = p95.locator("circle.point title").last.text_content() or ""
    assert re.fullmatch(r"\d\d:\d\d:\d\d UTC: [\d,.]+ ms", hover), hover
    errors = card.locator('figure[data-chart="5xx errors"]')
    assert "limit 5 %" in (errors.text_content() or "")


def endpoint_page(page, row, stack) -> None:
    """A row's link opens the endpoint's page: its exact figures over the range are those
    of /api/percentiles, and its alert history is there."""
    row.locator("a").click()
    page.wait_for_selector("#percentiles")
    assert page.url.startswith(stack.bridge.url + "/endpoint?service=admin-api")
    end = time.time()
    exact = httpx.get(stack.bridge.url + "/api/percentiles", params={
        "service": "admin-api", "endpoint": "/api/devices/{device_id}", "method": "GET",
        "start": end - 3600, "end": end + 1}).json()
    table = page.locator("#percentiles")
    assert table.locator('[data-figure="requests"]').inner_text() == f"{exact['requests']:,.0f}"
    for name in ("p50_ms", "p90_ms", "p95_ms", "p99_ms"):
        assert table.locator(f'[data-figure="{name}"]').inner_text() == f"{exact[name]:,.1f} ms"
    assert page.locator("#history").count() == 1
    page.locator(".ranges a", has_text="15m").click()
    page.wait_for_url("**range=15m**")
    assert page.locator(".ranges a.current").inner_text() == "15m"


def test_status_page_shows_a_dead_target_with_its_error(stack, browser):  # noqa: F811
    stack.wait_for_baseline()
    stack.ingest.stop()
    targets = wait_for(stack.targets, lambda t: not t["ingest"]["up"], timeout=30)
    page = browser.new_page()
    page.goto(stack.bridge.url + "/")
    row = page.locator('#targets tr[data-service="ingest"]')
    assert row.get_attribute("data-up") == "false"
    assert row.locator("td.down").inner_text() == "down"
    assert row.locator("td.last-error").inner_text() == targets["ingest"]["last_error"] != ""
    assert page.locator('#targets tr[data-service="admin-api"]').get_attribute("data-up") == \
        "true"
    alert = page.locator('#states tr[data-level="critical"]')
    assert alert.count() == 1 and "ingest" in alert.inner_text() and "up" in alert.inner_text()
    page.close()
    status = httpx.get(stack.bridge.url + "/api/status").json()["services"]
    assert status["ingest"]["level"] == "critical" and not status["ingest"]["up"]
    down = [s for s in status["ingest"]["states"] if s["metric"] == "up"]
    assert down == [{"endpoint": "_all", "metric": "up", "level": "critical", "value": 0.0,
                     "since": down[0]["since"], "at": down[0]["at"], "threshold": 0.5,
                     "limit": down[0]["limit"]}]
    assert down[0]["at"] >= down[0]["since"]  # judged at the failed scrape, or later
    assert down[0]["limit"]["for"] == 0.0  # a failed scrape is down at once (down_for: 0)
    assert status["admin-api"]["level"] == "ok"
    stored = wait_for(lambda: stack.query('SELECT "level", "value" FROM "threshold_states" '
                                          "WHERE \"metric\" = 'up'"), bool, timeout=30)
    assert stored[0]["values"][-1][1:] == ["critical", 0.0]
    # The change is listed under the last state changes, read back from InfluxDB.
    page = browser.new_page()
    page.goto(stack.bridge.url + "/")
    change = page.locator('#changes tr[data-level="critical"]').first
    assert "ingest" in change.inner_text() and "ok → critical" in change.inner_text()
    # The service's own page has the change in its alert history.
    page.goto(stack.bridge.url + "/endpoint?service=ingest&endpoint=_all&method=&range=1h")
    history = page.locator('#history tr[data-level="critical"]').first
    assert "up" in history.inner_text() and "ok → critical" in history.inner_text()
    page.close()
