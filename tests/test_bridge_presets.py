"""The bridge's presets against the real output of other exporters."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import httpx
import pytest
from promflux.bridge.analyze.derive import TargetDeriver
from promflux.bridge.config import Target
from promflux.bridge.ingest.exposition import parse
from promflux.bridge.ingest.fetch import fetch

from .conftest import uvicorn_server


def scrape(deriver: TargetDeriver, url: str, ts: float) -> list:
    async def go():
        async with aiohttp.ClientSession() as session:
            return await fetch(session, Target(service="api", url=url + "/metrics"), 5, 10**7)

    fetched = asyncio.run(go())
    return deriver.derive(parse(fetched.text, deriver.cache, fetched.openmetrics), ts)


@pytest.mark.parametrize("preset, bucket_above_120ms", [
    ("prometheus-fastapi-instrumentator", 500),  # its default buckets: 0.1, 0.5, 1
    ("starlette-exporter", 250),                # prometheus_client's: ..., 0.1, 0.25, ...
    ("aioprometheus", None),                    # counts only, no latency histogram
])
def test_preset_reads_the_real_library(preset, bucket_above_120ms):
    server = uvicorn_server("tests.apps.other_exporters:app", env={"EXPORTER_KIND": preset})
    try:
        deriver = TargetDeriver("api", preset)
        httpx.get(server.url + "/items/0")  # so that every series exists at the baseline
        scrape(deriver, server.url, time.time())
        for i in range(12):
            assert httpx.get(f"{server.url}/items/{i}", params={"delay_ms": 120}).status_code \
                == 200
        for _ in range(3):
            assert httpx.get(server.url + "/fail").status_code == 500
        points = scrape(deriver, server.url, time.time())
        perf = {(t["endpoint"], t["method"]): f for m, t, f, _ in points
                if m == "performance_metrics"}
        items = perf[("/items/{item_id}", "GET")]
        assert items["requests"] == 12
        failed = perf[("/fail", "GET")]
        assert failed["requests"] == 3 and failed["errors"] == 3
        assert failed["error_rate_percent"] == 100
        if bucket_above_120ms:
            # Every request took 120 ms and a little: p95 lies in the bucket that holds it.
            assert 100 < items["p95_ms"] <= bucket_above_120ms
            assert 115 < items["response_time_ms"] < 250
        else:
            assert "p95_ms" not in items
    finally:
        server.stop()
