"""WebSocket messages of a real aiohttp service through a real bridge into InfluxDB and
onto the status page: handled messages by kind and closes by code, as sent."""

from __future__ import annotations

import asyncio
import sys
import time

import httpx

from .conftest import Server, aiohttp_server, free_port, scraped_after, wait_for
from .test_exporter_websocket_messages import session


def test_websocket_figures_reach_influxdb_and_the_status_page(tmp_path, influxdb):
    service = aiohttp_server("tests.apps.aiohttp_app:create_app")
    port = free_port()
    config = tmp_path / "bridge.yml"
    config.write_text(
        f"influxdb:\n  url: {influxdb.url}\n  database: ws\n"
        f"scrape:\n  interval: 1s\n  timeout: 1s\nbuffer:\n  path: {tmp_path}/buf\n"
        f"listen: 127.0.0.1:{port}\n"
        f"targets:\n  - service: ingest\n    url: {service.url}/metrics\n")
    bridge = Server([sys.executable, "-m", "promflux.bridge", "--config", str(config)], port,
                    ready_path="/healthz")
    try:
        scraped_after(bridge.url, time.time())  # the baseline, before any message
        asyncio.run(session(service.url, [{"type": "reading", "sleep_ms": 5}] * 4
                            + [{"type": "command", "sleep_ms": 0}] * 2))
        asyncio.run(session(service.url, [{"type": "bye"}], close=False))
        scraped_after(bridge.url, time.time())

        def stored(query: str) -> dict[str, float]:
            return {s["tags"][tag]: s["values"][0][1]
                    for tag in ("kind", "code") for s in influxdb.query(query, db="ws")
                    if tag in s["tags"]}

        messages = wait_for(lambda: stored(
            'SELECT sum("handling_count") FROM "websocket_messages" GROUP BY "kind"'),
            lambda m: m.get("reading") == 4 and m.get("command") == 2, timeout=30)
        assert messages == {"reading": 4, "command": 2}
        closes = wait_for(lambda: stored(
            'SELECT sum("closes") FROM "websocket_closes" GROUP BY "code"'),
            lambda c: sum(c.values()) >= 2, timeout=30)
        assert closes == {"1000": 1, "4001": 1}
        page = httpx.get(bridge.url + "/?part=main").text
        assert ('<tr data-route="/ws/readings" data-label="reading"><td>/ws/readings</td>'
                "<td>reading</td><td>4</td>") in page
        assert '<tr data-route="/ws/readings" data-label="4001">' in page
        # Not an HTTP endpoint anywhere: no performance row for the WebSocket route.
        assert not influxdb.query('SELECT count("requests") FROM "performance_metrics" WHERE '
                                  '"endpoint" = \'/ws/readings\'', db="ws")
    finally:
        bridge.stop()
        service.stop()
