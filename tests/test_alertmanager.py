"""Alerts reach Debian's real prometheus-alertmanager through its v2 API, are re-sent while
active, resolve when the problem ends, and Alertmanager routes them to its receiver."""

from __future__ import annotations

import sys

import httpx

from .conftest import Server, free_port, uvicorn_server, wait_for
from .test_detection import Load
from .webhook_receiver import Receiver

ENDPOINT = "GET /items/{item_id}"


def p95_alerts(alertmanager: Server) -> list[dict]:
    alerts = httpx.get(alertmanager.url + "/api/v2/alerts").json()
    return [a for a in alerts if a["labels"].get("endpoint") == ENDPOINT
            and a["labels"].get("metric") == "p95_ms"]


def notified(receiver: Receiver, status: str) -> list[dict]:
    return [alert for body in receiver.delivered if body["status"] == status
            for alert in body["alerts"] if alert["labels"].get("endpoint") == ENDPOINT]


def sent(bridge: Server) -> float:
    for line in httpx.get(bridge.url + "/metrics").text.splitlines():
        if line.startswith("promflux_bridge_alertmanager_sent_total"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_alerts_fire_repeat_and_resolve_in_alertmanager(tmp_path, influxdb, alertmanager):
    api = uvicorn_server("tests.apps.fastapi_app:app")
    port = free_port()
    config = tmp_path / "bridge.yml"
    config.write_text(
        f"influxdb:\n  url: {influxdb.url}\n  database: alerting\n"
        f"scrape:\n  interval: 1s\n  timeout: 1s\nbuffer:\n  path: {tmp_path}/buf\n"
        f"listen: 127.0.0.1:{port}\n"
        "thresholds:\n  window: 3s\n  for: 0s\n  resolve: 0s\n"
        f"alertmanagers:\n  - url: {alertmanager.url}\n    resend_interval: 1s\n"
        f"targets:\n  - service: api\n    url: {api.url}/metrics\n")
    bridge = Server([sys.executable, "-m", "promflux.bridge", "--config", str(config)], port,
                    ready_path="/healthz")
    load = Load(api.url)
    try:
        load.delay_ms = 700
        firing = wait_for(lambda: p95_alerts(alertmanager), lambda a: bool(a), timeout=60)
        alert = firing[0]
        assert alert["labels"] == {"alertname": "promflux_p95_ms", "service": "api",
                                   "endpoint": ENDPOINT, "metric": "p95_ms",
                                   "severity": "warning"}
        assert alert["status"]["state"] == "active"
        assert float(alert["annotations"]["limit"]) == 500.0
        assert float(alert["annotations"]["value"]) >= 500.0
        # Alertmanager routed it to its receiver; the bridge keeps re-sending it.
        wait_for(lambda: notified(alertmanager.receiver, "firing"), bool, timeout=30)
        before = sent(bridge)
        wait_for(lambda: sent(bridge), lambda n: n >= before + 2, timeout=30)

        load.delay_ms = 0
        wait_for(lambda: p95_alerts(alertmanager), lambda a: not any(
            x["status"]["state"] == "active" for x in a), timeout=60)
        resolved = wait_for(lambda: notified(alertmanager.receiver, "resolved"), bool,
                            timeout=30)
        assert resolved[0]["labels"]["severity"] == "warning"
        assert resolved[0]["endsAt"] >= alert["startsAt"]
    finally:
        load.stop()
        bridge.stop()
        api.stop()
