"""Prometheus's own linter (Debian's promtool) finds nothing to say about the text
/metrics of a FastAPI service, an aiohttp service and a background worker, with traffic
of every kind recorded (requests, errors, events, queue waits, jobs, WebSockets)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import httpx
import pytest

from .conftest import Server, free_port


def promtool_says(text: str) -> tuple[int, str]:
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: `make test` installs Debian's prometheus"
    done = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                          capture_output=True, timeout=30)
    return done.returncode, (done.stdout + done.stderr).decode()


def test_fastapi_metrics_pass_promtool(fastapi_service):
    base = fastapi_service.url
    httpx.get(base + "/items/3")
    httpx.get(base + "/boom")
    httpx.post(base + "/events/switch_toggled", params={"n": 2})
    httpx.get(base + "/no/such/path")
    assert promtool_says(httpx.get(base + "/metrics").text) == (0, "")


@pytest.mark.parametrize("aiohttp_service", ["entry"], indirect=True)
def test_aiohttp_metrics_pass_promtool(aiohttp_service):
    base = aiohttp_service.url
    httpx.get(base + "/readings/hall")
    httpx.get(base + "/boom")
    httpx.post(base + "/events/reading", params={"n": 2})
    httpx.post(base + "/queue/roundtrip", params={"wait_ms": 5})
    httpx.get(base + "/legacy")  # aioprometheus's counter on the same page
    assert promtool_says(httpx.get(base + "/metrics").text) == (0, "")


def test_worker_metrics_pass_promtool(tmp_path):
    port = free_port()
    server = Server([sys.executable, "-m", "tests.apps.worker_app", "--port", str(port),
                     "--truth", str(tmp_path / "truth.json"), "--stop-file",
                     str(tmp_path / "stop")], port, ready_path="/metrics")
    try:
        assert promtool_says(httpx.get(server.url + "/metrics").text) == (0, "")
    finally:
        server.stop()
