"""The example stack outside Docker: the two example services and the bridge with
examples/bridge.yml (the file docker-compose.yml mounts), against a test influxd."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

from .conftest import Server, free_port, uvicorn_server, wait_for

ROOT = Path(__file__).resolve().parent.parent


class ExampleStack:
    def __init__(self, influx, database: str, buffer_dir: Path, interval: str = "1s",
                 env: dict[str, str] | None = None,
                 bridge_env: dict[str, str] | None = None,
                 worker_calls_services: bool = True) -> None:
        self.influx, self.database = influx, database
        service_env = dict(env or {})
        self.api = uvicorn_server("examples.api_service:app", env=service_env)
        port = free_port()
        self.ingest = Server([sys.executable, "-m", "examples.ingest_service", "--port",
                              str(port)], port, env=service_env)
        worker_port = free_port()
        # Without calls, the worker's runs fail (nothing listens on port 9) and the services
        # see exactly the requests a test sends.
        upstream = ((self.ingest.url, self.api.url) if worker_calls_services
                    else ("http://127.0.0.1:9", "http://127.0.0.1:9"))
        self.worker = Server([sys.executable, "-m", "examples.worker", "--port",
                              str(worker_port), "--ingest", upstream[0], "--api", upstream[1]],
                             worker_port, env=service_env, ready_path="/metrics")
        bridge_port = free_port()
        self.bridge = Server(
            [sys.executable, "-m", "promflux.bridge", "--config",
             str(ROOT / "examples" / "bridge.yml")],
            bridge_port, ready_path="/healthz",
            env={"PROMFLUX_INFLUXDB_URL": influx.url, "PROMFLUX_INFLUXDB_DATABASE": database,
                 "API_PORT": str(self.api.port), "INGEST_PORT": str(port),
                 "WORKER_PORT": str(worker_port),
                 "LISTEN": f"127.0.0.1:{bridge_port}", "SCRAPE_INTERVAL": interval,
                 "SCRAPE_TIMEOUT": interval, "BUFFER_PATH": str(buffer_dir),
                 **(bridge_env or {})})

    def targets(self) -> dict[str, dict]:
        return {t["service"]: t for t in httpx.get(self.bridge.url + "/api/targets").json()}

    def wait_for_baseline(self) -> None:
        wait_for(self.targets, lambda t: all(x["scrapes"] >= 1 and x["up"] for x in t.values()),
                 timeout=20)

    def query(self, q: str) -> list[dict]:
        try:
            return self.influx.query(q, db=self.database)
        except RuntimeError:  # database not found before the bridge's set-up
            return []

    def stop(self) -> None:
        for server in (self.bridge, self.worker, self.api, self.ingest):
            server.stop()
