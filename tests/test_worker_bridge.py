"""A real worker through a real bridge into the real InfluxDB: every run counted, the
duration p95 exact against the worker's own histogram, failure and staleness states, and
the status page's jobs table."""

from __future__ import annotations

import json
import math
import sys
import time

import httpx
from promflux.bridge.analyze.quantile import normalize, quantile

from .conftest import Server, free_port, scrape, scraped_after, wait_for
from .influx import cumulative_buckets


def p95_of_exposition(samples, job: str) -> float:
    """histogram_quantile over the worker's own buckets (every outcome summed)."""
    buckets: dict[float, float] = {}
    for _, labels, value in samples.find("job_duration_seconds_bucket", job=job):
        le = float(labels["le"])
        buckets[le] = buckets.get(le, 0.0) + value
    value = quantile(0.95, normalize(buckets.items()))
    assert value is not None and not math.isinf(value)
    return value * 1000.0


def test_worker_jobs_through_the_bridge(tmp_path, influxdb):
    port, bridge_port = free_port(), free_port()
    truth_file, go, stop = tmp_path / "truth.json", tmp_path / "go", tmp_path / "stop"
    worker = Server([sys.executable, "-m", "tests.apps.worker_app", "--port", str(port),
                     "--truth", str(truth_file), "--stop-file", str(stop), "--go-file",
                     str(go)], port, ready_path="/metrics")
    config = tmp_path / "bridge.yml"
    config.write_text(
        f"influxdb:\n  url: {influxdb.url}\n  database: jobs\n"
        f"scrape:\n  interval: 1s\n  timeout: 1s\nbuffer:\n  path: {tmp_path}/buf\n"
        f"listen: 127.0.0.1:{bridge_port}\n"
        "thresholds:\n  window: 3s\n  for: 0s\n  resolve: 0s\n  overrides:\n"
        "    - endpoint: job:heartbeat\n      job_stale_seconds: {warning: 1, critical: 2}\n"
        f"targets:\n  - service: worker\n    url: {worker.url}/metrics\n")
    bridge = Server([sys.executable, "-m", "promflux.bridge", "--config", str(config)],
                    bridge_port, ready_path="/healthz")
    try:
        scraped_after(bridge.url, time.time())  # the baseline scrape, before any run
        go.touch()
        wait_for(truth_file.exists, bool, timeout=60)
        truth = json.loads(truth_file.read_text())
        scraped_after(bridge.url, time.time())  # a scrape after the last planned run
        samples = scrape(worker.url)

        def stored() -> dict[str, dict]:
            series = influxdb.query(
                'SELECT sum("runs") AS "runs", sum("failures") AS "failures", '
                'sum("cancelled") AS "cancelled" FROM "jobs" WHERE "service" = \'worker\' '
                'GROUP BY "job"', db="jobs")
            return {s["tags"]["job"]: dict(zip(s["columns"], s["values"][0], strict=True))
                    for s in series}

        expected = {job: {o: sum(1 for r in runs if r["outcome"] == o)
                          for o in ("failure", "cancelled")} for job, runs in truth.items()}
        rows = wait_for(stored, lambda r: all(
            job in r and r[job]["runs"] == len(truth[job]) for job in truth), timeout=30)
        for job, runs in truth.items():
            assert rows[job]["runs"] == len(runs)
            assert rows[job]["failures"] == expected[job]["failure"]
            assert rows[job]["cancelled"] == expected[job]["cancelled"]
            buckets = influxdb.query(
                'SELECT sum(/^le_/) FROM "job_buckets" WHERE "service" = \'worker\' AND '
                f'"job" = \'{job}\'', db="jobs")
            stored_buckets = cumulative_buckets(buckets)
            bridge_p95 = quantile(0.95, normalize(stored_buckets.items()))
            assert bridge_p95 is not None
            assert bridge_p95 * 1000.0 == p95_of_exposition(samples, job), job
        failures = influxdb.query(
            'SELECT sum("failures") FROM "job_failures" WHERE "job" = \'resize\' '
            'GROUP BY "exception"', db="jobs")
        assert {s["tags"]["exception"]: s["values"][0][1] for s in failures} == {
            "ValueError": expected["resize"]["failure"]}

        page = httpx.get(bridge.url + "/?part=main").text
        assert 'data-job="resize"' in page and 'data-job="fetch"' in page
        worker_card = page.split('data-service="worker"', 1)[1]
        assert 'data-figure="p95_ms"' not in worker_card  # no empty request cards
        assert 'data-figure="cpu_percent"' in worker_card

        stop.touch()  # the heartbeat fails from now on: failing, then stale

        def heartbeat() -> dict[str, dict]:
            states = httpx.get(bridge.url + "/api/status").json()["services"]["worker"]
            return {s["metric"]: s for s in states["states"] if s["endpoint"] == "job:heartbeat"}

        states = wait_for(heartbeat, lambda s: all(
            s.get(m, {}).get("level") == "critical"
            for m in ("job_failure_percent", "job_stale_seconds")), timeout=30)
        assert states["job_failure_percent"]["value"] >= 50.0  # the critical level
        assert states["job_stale_seconds"]["value"] >= 2.0
        assert states["job_stale_seconds"]["limit"]["critical"] == 2.0
        # Jobs without an override are not judged for staleness (off unless configured).
        assert "job_stale_seconds" not in {
            s["metric"] for s in httpx.get(bridge.url + "/api/status").json()["services"][
                "worker"]["states"] if s["endpoint"] == "job:resize"}
    finally:
        bridge.stop()
        worker.stop()
