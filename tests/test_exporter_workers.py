"""Several worker processes: request metrics summed, resources per worker."""

from __future__ import annotations

import concurrent.futures
import sys

import httpx
import pytest

from .conftest import Server, free_port, scrape, uvicorn_server, wait_for

pytestmark = pytest.mark.compat

DURATION = "http_request_duration_seconds"


def test_two_uvicorn_workers_sum_requests_and_report_each_process(tmp_path):
    server = uvicorn_server("tests.apps.fastapi_app:app", "--workers", "2",
                            env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    try:
        # Fresh connections, concurrently, so both workers take requests.
        def hit(i: int) -> int:
            return httpx.get(f"{server.url}/items/{i}",
                             headers={"Connection": "close"}).status_code

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            assert set(pool.map(hit, range(60))) == {200}
        for _i in range(5):
            httpx.post(f"{server.url}/events/switch_toggled", params={"n": 2})
        # Each worker flushes its counts every second.
        samples = wait_for(lambda: scrape(server.url), lambda s: s.get(
            DURATION + "_count", route="/items/{item_id}", method="GET", status="200") >= 60
            and s.get("events_processed_total", kind="switch_toggled") >= 10)
        assert samples.value(DURATION + "_count", route="/items/{item_id}", method="GET",
                             status="200") == 60
        assert samples.value("events_processed_total", kind="switch_toggled") == 10
        pids = samples.label_values("service_memory_rss_bytes", "pid")
        assert len(pids) == 2, pids
        assert pids == samples.label_values("service_cpu_seconds_total", "pid")
        assert samples.value("http_requests_in_progress") == 0
        # The 60 requests went to more than one worker: scrapes from either agree.
        again = scrape(server.url)
        assert again.value(DURATION + "_count", route="/items/{item_id}", method="GET",
                           status="200") == 60
    finally:
        server.stop()


def test_gunicorn_with_uvicorn_workers(tmp_path):
    pytest.importorskip("gunicorn")
    worker = "uvicorn_worker.UvicornWorker"
    try:
        import uvicorn_worker  # noqa: F401
    except ImportError:
        worker = "uvicorn.workers.UvicornWorker"
    port = free_port()
    server = Server([sys.executable, "-m", "gunicorn", "tests.apps.fastapi_app:app",
                     "-k", worker, "-w", "2", "-b", f"127.0.0.1:{port}"],
                    port, env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    try:
        with httpx.Client(base_url=server.url) as client:
            for i in range(30):
                assert client.get(f"/api/v1/users/{i}",
                                  headers={"Connection": "close"}).status_code == 200
        samples = wait_for(lambda: scrape(server.url), lambda s: s.get(
            DURATION + "_count", route="/api/v1/users/{user_id}", method="GET",
            status="200") >= 30 and len(s.label_values("service_threads", "pid")) == 2)
        assert samples.value(DURATION + "_count", route="/api/v1/users/{user_id}",
                             method="GET", status="200") == 30
        assert len(samples.label_values("service_threads", "pid")) == 2
    finally:
        server.stop()


def test_several_workers_without_the_shared_directory_are_told_once():
    server = uvicorn_server("tests.apps.fastapi_app:app", "--workers", "2")
    try:
        for _ in range(3):
            assert httpx.get(server.url + "/metrics",
                             headers={"Connection": "close"}).status_code == 200
        out = wait_for(server.output, lambda o: "PROMETHEUS_MULTIPROC_DIR is not set" in o)
        assert "uvicorn runs 2 worker processes" in out
        # Once per worker process at most, and nothing else went wrong.
        assert out.count("PROMETHEUS_MULTIPROC_DIR is not set") <= 2
        assert "Traceback" not in out
    finally:
        server.stop()


def test_one_worker_is_not_warned_about(fastapi_service):
    assert httpx.get(fastapi_service.url + "/metrics").status_code == 200
    assert "PROMETHEUS_MULTIPROC_DIR" not in fastapi_service.output()
