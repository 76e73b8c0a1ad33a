"""A worker without a web framework: start_metrics_server's /metrics, and the job API on
sync and async code, read back with prometheus_client's parser from a real process."""

from __future__ import annotations

import asyncio
import json
import sys
import time

import httpx
import pytest
from prometheus_client import CollectorRegistry
from promflux.exporter import start_metrics_server
from promflux.exporter.jobs import MAX_KINDS
from promflux.exporter.worker import FLUSH_TIMEOUT_S

from .conftest import Samples, Server, free_port, scrape, wait_for

JOB_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


@pytest.fixture()
def worker(tmp_path):
    port = free_port()
    truth = tmp_path / "truth.json"
    server = Server([sys.executable, "-m", "tests.apps.worker_app", "--port", str(port),
                     "--truth", str(truth), "--stop-file", str(tmp_path / "stop")], port,
                    ready_path="/metrics")
    wait_for(truth.exists, bool, timeout=60)
    server.truth = json.loads(truth.read_text())  # type: ignore[attr-defined]
    yield server
    server.stop()


def test_jobs_are_recorded_by_outcome_exception_and_duration(worker):
    samples = scrape(worker.url)
    for job, exception in (("resize", "ValueError"), ("fetch", "KeyError")):
        runs = worker.truth[job]
        for outcome in ("success", "failure", "cancelled"):
            expected = sum(1 for r in runs if r["outcome"] == outcome)
            assert samples.get("job_duration_seconds_count", job=job, outcome=outcome,
                               service="worker") == expected, (job, outcome)
        failures = sum(1 for r in runs if r["outcome"] == "failure")
        assert samples.value("job_failures_total", job=job, exception=exception) == failures
        assert samples.value("jobs_in_progress", job=job) == 0
        # A run takes at least its sleep: no bucket counts more runs than slept within it.
        finished = [r for r in runs if r["sleep"] is not None]
        for bound in JOB_BOUNDS:
            counted = sum(samples.get("job_duration_seconds_bucket", job=job, le=str(bound),
                                      outcome=o) for o in ("success", "failure"))
            assert counted <= sum(1 for r in finished if r["sleep"] <= bound), (job, bound)
        total = sum(samples.get("job_duration_seconds_sum", job=job, outcome=o)
                    for o in ("success", "failure"))
        assert total >= sum(r["sleep"] for r in finished)
    last = samples.value("job_last_success_timestamp_seconds", job="resize")
    assert time.time() - 120 < last <= time.time()
    assert samples.value("queue_wait_seconds_count", queue="downloads") == 20


def test_the_worker_reports_its_own_process_resources(worker):
    samples = scrape(worker.url)
    pid = str(worker.proc.pid)
    assert samples.value("service_cpu_seconds_total", pid=pid, service="worker") > 0
    assert samples.value("service_memory_rss_bytes", pid=pid) > 5 * 2**20
    assert samples.value("service_threads", pid=pid) >= 2  # main + the metrics server
    assert samples.value("service_open_fds", pid=pid) > 0
    assert samples.find("service_disk_usage_percent")


def test_heartbeat_last_success_stops_moving_once_it_fails(worker, tmp_path):
    def heartbeat() -> Samples:
        return scrape(worker.url)

    first = wait_for(heartbeat, lambda s: s.get("job_duration_seconds_count", job="heartbeat",
                                                 outcome="success") >= 2)
    (tmp_path / "stop").touch()
    stopped = wait_for(heartbeat, lambda s: s.get("job_failures_total", job="heartbeat",
                                                   exception="RuntimeError") >= 2)
    last = stopped.value("job_last_success_timestamp_seconds", job="heartbeat")
    later = wait_for(heartbeat, lambda s: s.get("job_failures_total", job="heartbeat",
                                                 exception="RuntimeError") >= 4)
    assert later.value("job_last_success_timestamp_seconds", job="heartbeat") == last
    assert last >= first.value("job_last_success_timestamp_seconds", job="heartbeat")


def test_metrics_auth_and_unknown_paths(tmp_path):
    port = free_port()
    server = Server([sys.executable, "-m", "tests.apps.worker_app", "--port", str(port),
                     "--truth", str(tmp_path / "t.json")], port, ready_path="/metrics",
                    env={"METRICS_TOKEN": "s3cret"})
    try:
        assert httpx.get(server.url + "/metrics").status_code == 401
        ok = httpx.get(server.url + "/metrics", headers={"Authorization": "Bearer s3cret",
                                                         "Accept-Encoding": "gzip"})
        assert ok.status_code == 200 and ok.headers["Content-Encoding"] == "gzip"
        assert "job_duration_seconds" in ok.text
        assert httpx.get(server.url + "/nothing-here").status_code == 404
    finally:
        server.stop()


def test_job_kinds_are_bounded_and_a_timer_times_one_run_at_a_time():
    metrics = start_metrics_server("bounded", 0, addr="127.0.0.1",
                                   registry=CollectorRegistry())
    try:
        for i in range(MAX_KINDS + 20):
            with metrics.job(f"job-{i}"):
                pass
        timer = metrics.job("once")
        with timer, pytest.raises(RuntimeError, match="once per run"):
            timer.__enter__()
        with pytest.raises(ValueError):
            metrics.job("")
        text = httpx.get(f"http://127.0.0.1:{metrics.server.port}/metrics").text
        samples = Samples(text)
        kinds = samples.label_values("job_duration_seconds_count", "job")
        assert len(kinds) == MAX_KINDS + 1 and "_other" in kinds
        assert samples.value("job_duration_seconds_count", job="_other",
                             outcome="success") == 21  # 20 past the bound, and "once"
    finally:
        metrics.server.stop()


def test_a_scrape_while_the_loop_is_busy_answers_and_loses_nothing():
    metrics = start_metrics_server("busy", 0, addr="127.0.0.1", registry=CollectorRegistry())
    url = f"http://127.0.0.1:{metrics.server.port}/metrics"

    async def run() -> tuple[httpx.Response, float]:
        queue = metrics.queue("work")
        for i in range(50):
            queue.put_nowait(i)
            await queue.get()
        # The loop is blocked in sync code for longer than the server waits for it.
        scrape_task = asyncio.create_task(asyncio.to_thread(httpx.get, url, timeout=30))
        await asyncio.sleep(0.05)
        time.sleep(FLUSH_TIMEOUT_S + 1)
        during = await scrape_task
        after = Samples(await asyncio.to_thread(lambda: httpx.get(url).text))
        return during, after.get("queue_wait_seconds_count", queue="work")

    try:
        during, after = asyncio.run(run())
        assert during.status_code == 200  # answered without the loop
        # Not flushed then (or flushed whole): the counts are never torn, nothing is lost.
        assert Samples(during.text).get("queue_wait_seconds_count", queue="work") in (0, 50)
        assert after == 50
    finally:
        metrics.server.stop()


def test_a_scrape_never_sees_a_failure_without_its_run():
    """Jobs failing in 4 threads while 4 threads scrape: in every answer, each job's
    failures (by exception) add up to its failed runs."""
    import concurrent.futures
    import threading

    metrics = start_metrics_server("torn", port=0, addr="127.0.0.1",
                                   registry=CollectorRegistry())
    url = f"http://127.0.0.1:{metrics.server.port}"
    stop = threading.Event()

    def fail_forever(kind: str) -> None:
        while not stop.is_set():
            try:
                with metrics.job(kind):
                    raise ValueError("bad input")
            except ValueError:
                pass

    def check(_: int) -> int:
        torn = 0
        with httpx.Client() as client:
            for _ in range(15):
                samples = Samples(client.get(url + "/metrics").text)
                for kind in ("a", "b"):
                    failures = samples.get("job_failures_total", job=kind,
                                           exception="ValueError")
                    runs = samples.get("job_duration_seconds_count", job=kind,
                                       outcome="failure")
                    torn += failures != runs
        return torn

    workers = [threading.Thread(target=fail_forever, args=(k,)) for k in "abab"]
    for thread in workers:
        thread.start()
    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            torn = sum(pool.map(check, range(4)))
    finally:
        stop.set()
        for thread in workers:
            thread.join()
        metrics.server.stop()
    assert torn == 0
