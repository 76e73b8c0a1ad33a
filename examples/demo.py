"""``make demo``: the whole system on this machine, without Docker.

Starts InfluxDB (Debian's influxd, data in .demo/), the two example services, the load
generator and the bridge (examples/bridge.yml, the file docker-compose.yml uses), prints the
URLs, and stops everything cleanly on Ctrl-C. Ports and the data directory can be moved
with DEMO_DIR, INFLUXDB_PORT, API_PORT, INGEST_PORT, WORKER_PORT and BRIDGE_PORT.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def wait_http(url: str, what: str, proc: subprocess.Popen[bytes], log: Path,
              timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited; its log ({log}):\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"{what} did not answer at {url} within {timeout:.0f} s; see {log}")


def influx_config(directory: Path, port: int, rpc_port: int, auth: bool = False,
                  cq_interval: str = "1s") -> Path:
    """An influxd config with everything under ``directory``, HTTP on loopback ``port``
    (also used by the test suite's InfluxDB)."""
    config = directory / "influxdb.conf"
    config.write_text(f"""reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{directory}/meta"
[data]
  dir = "{directory}/data"
  wal-dir = "{directory}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
  auth-enabled = {"true" if auth else "false"}
[continuous_queries]
  log-enabled = false
  run-interval = "{cq_interval}"
[monitor]
  store-enabled = false
""")
    return config


def main() -> None:
    directory = Path(os.environ.get("DEMO_DIR", ROOT / ".demo")).resolve()
    ports = {name: int(os.environ.get(name, default)) for name, default in (
        ("INFLUXDB_PORT", 8086), ("API_PORT", 8001), ("INGEST_PORT", 8002),
        ("WORKER_PORT", 9200), ("BRIDGE_PORT", 9108))}
    influxd = shutil.which("influxd")
    if influxd is None:
        sys.exit("influxd not found: `make demo` installs Debian's influxdb")
    busy = [f"{name}={port}" for name, port in ports.items() if not port_free(port)]
    if busy:
        sys.exit(f"ports in use: {', '.join(busy)} (set them to free ports, e.g. "
                 "API_PORT=18001 make demo)")
    (directory / "logs").mkdir(parents=True, exist_ok=True)
    influx_url = f"http://127.0.0.1:{ports['INFLUXDB_PORT']}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PROMFLUX_INFLUXDB_URL": influx_url,
           "API_PORT": str(ports["API_PORT"]), "INGEST_PORT": str(ports["INGEST_PORT"]),
           "WORKER_PORT": str(ports["WORKER_PORT"]),
           "LISTEN": f"127.0.0.1:{ports['BRIDGE_PORT']}",
           "BUFFER_PATH": str(directory / "buffer"),
           "SCRAPE_INTERVAL": os.environ.get("SCRAPE_INTERVAL", "5s"),
           "SCRAPE_TIMEOUT": os.environ.get("SCRAPE_TIMEOUT", "3s")}
    api, ingest = (f"http://127.0.0.1:{ports['API_PORT']}",
                   f"http://127.0.0.1:{ports['INGEST_PORT']}")
    bridge = f"http://127.0.0.1:{ports['BRIDGE_PORT']}"
    py = sys.executable
    steps = [
        ("influxdb", [influxd, "-config", str(influx_config(
            directory, ports["INFLUXDB_PORT"], ports["INFLUXDB_PORT"] + 1, cq_interval="1m"))],
         influx_url + "/ping"),
        ("admin-api", [py, "-m", "uvicorn", "examples.api_service:app", "--host", "127.0.0.1",
                       "--port", str(ports["API_PORT"]), "--log-level", "warning"],
         api + "/health"),
        ("ingest", [py, "-m", "examples.ingest_service", "--port", str(ports["INGEST_PORT"])],
         ingest + "/health"),
        ("worker", [py, "-m", "examples.worker", "--port", str(ports["WORKER_PORT"]),
                    "--ingest", ingest, "--api", api],
         f"http://127.0.0.1:{ports['WORKER_PORT']}/metrics"),
        ("bridge", [py, "-m", "promflux.bridge", "--config", str(ROOT / "examples" / "bridge.yml")],
         bridge + "/healthz"),
        ("loadgen", [py, "-m", "examples.loadgen", "--api", api, "--ingest", ingest], None),
    ]
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def stop(*_: object) -> None:
        print("\nstopping ...", flush=True)
        for _name, proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
        for _name, proc in reversed(procs):
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        print("stopped; data kept in", directory, flush=True)
        sys.exit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for name, argv, ready in steps:
        log = directory / "logs" / f"{name}.log"
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log.open("ab"),
                                stderr=subprocess.STDOUT, start_new_session=True)
        procs.append((name, proc))
        if ready:
            wait_http(ready, name, proc, log)
        print(f"started {name}", flush=True)
    print(f"""
promflux demo is running (logs in {directory / 'logs'}):
  admin-api metrics     {api}/metrics
  ingest metrics        {ingest}/metrics
  worker metrics        http://127.0.0.1:{ports['WORKER_PORT']}/metrics
  bridge status page    {bridge}/
  bridge API            {bridge}/api/status  {bridge}/api/targets
  InfluxDB              {influx_url}  (database "performance")
Grafana: import grafana/dashboards/*.json with an InfluxDB datasource at {influx_url}.
Press Ctrl-C to stop.""", flush=True)
    while True:
        for name, proc in procs:
            if proc.poll() is not None:
                print(f"{name} exited with {proc.returncode}; see {directory}/logs/{name}.log",
                      flush=True)
                stop()
        time.sleep(1)


if __name__ == "__main__":
    main()
