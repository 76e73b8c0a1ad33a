"""Deployment: docker-compose.yml (validated by Debian's docker-compose, every file it
refers to present) and `make demo` run for a while on this machine."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess

import httpx
import pytest
import yaml
from promflux.bridge.config import load

from .conftest import ROOT, free_port, wait_for


@pytest.fixture(scope="module")
def compose() -> dict:
    binary = shutil.which("docker-compose")
    if binary is None:
        raise RuntimeError("docker-compose is missing: `make test` installs Debian's package")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMFLUX_", "DEMO_"))}
    done = subprocess.run([binary, "-f", "docker-compose.yml", "config"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def container_ports(service: dict) -> set[str]:
    """Published container ports, from the long or the short syntax."""
    out = set()
    for port in service.get("ports", []):
        if isinstance(port, dict):
            out.add(str(port["target"]))
        else:
            out.add(str(port).split("/")[0].rsplit(":", 1)[-1])
    return out


def test_compose_has_every_part_with_health_checks_and_volumes(compose):
    services = compose["services"]
    assert set(services) == {"influxdb", "grafana", "bridge", "admin-api", "ingest", "worker",
                             "loadgen"}
    assert services["influxdb"]["image"] == "influxdb:1.8"
    for name, service in services.items():
        if name != "loadgen":
            assert service["healthcheck"]["test"], name
    assert set(compose["volumes"]) == {"influxdb-data", "bridge-buffer", "grafana-data"}
    assert services["bridge"]["environment"]["PROMFLUX_INFLUXDB_URL"] == "http://influxdb:8086"


def test_every_file_compose_and_the_dockerfile_refer_to_exists(compose):
    dockerfile = (ROOT / "Dockerfile").read_text()
    for sources in re.findall(r"^COPY (.+) \S+$", dockerfile, re.M):
        for source in sources.split():
            assert (ROOT / source).exists(), source
    assert "WORKDIR /app" in dockerfile
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            if source.startswith(("/", ".")):
                assert (ROOT / os.path.relpath(source, ROOT)).exists(), (name, source)
        command = service.get("command") or []
        for arg in command:
            if arg.startswith("/app/"):
                assert (ROOT / arg.removeprefix("/app/")).exists(), (name, arg)
            module = re.fullmatch(r"(examples\.\w+)(:app)?", arg)
            if module:
                assert (ROOT / (module.group(1).replace(".", "/") + ".py")).exists(), arg
        if "uvicorn" in command:  # the published port is the one the server listens on
            port = command[command.index("--port") + 1]
            assert port in container_ports(service), name
    for rel in ("grafana/provisioning/datasources/influxdb.yml",
                "grafana/provisioning/dashboards/promflux.yml"):
        assert (ROOT / rel).exists()


def test_the_bridge_config_in_compose_resolves_to_the_compose_services(compose):
    bridge = compose["services"]["bridge"]
    config = load(ROOT / "examples" / "bridge.yml", environ={
        k: str(v) for k, v in bridge["environment"].items() if v is not None})
    urls = {t.service: t.url for t in config.targets}
    assert urls == {"admin-api": "http://admin-api:8001/metrics",
                    "ingest": "http://ingest:8002/metrics",
                    "worker": "http://worker:9200/metrics"}
    assert set(urls) <= set(compose["services"])
    assert config.influxdb.url == "http://influxdb:8086"
    assert config.listen.rpartition(":")[2] in container_ports(bridge)


def free_port_pair() -> int:
    """A free port P whose P + 1 is free too (influxd binds its RPC port there)."""
    import socket

    for _ in range(100):
        port = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair")


def test_make_demo_runs_reaches_influxdb_and_stops_cleanly(tmp_path):
    ports = {name: str(free_port()) for name in ("API_PORT", "INGEST_PORT", "WORKER_PORT",
                                                  "BRIDGE_PORT")}
    ports["INFLUXDB_PORT"] = str(free_port_pair())
    env = {**os.environ, **ports, "DEMO_DIR": str(tmp_path / "demo"), "SCRAPE_INTERVAL": "1s",
           "SCRAPE_TIMEOUT": "1s"}
    env.pop("PROMFLUX_INFLUXDB_URL", None)
    demo = subprocess.Popen(["make", "-s", "demo"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    influx = f"http://127.0.0.1:{ports['INFLUXDB_PORT']}"
    try:
        def requests_stored() -> float:
            try:
                body = httpx.post(influx + "/query", params={
                    "db": "performance", "q": 'SELECT sum("requests") FROM '
                    '"performance_metrics" WHERE "endpoint" = \'_all\' GROUP BY "service"'},
                    timeout=2).json()
                series = body["results"][0].get("series", [])
                return min((s["values"][0][1] for s in series), default=0) if len(
                    series) == 2 else 0
            except (httpx.HTTPError, KeyError, ValueError):
                return 0

        stored = wait_for(requests_stored, lambda n: n > 0, timeout=90)
        page = httpx.get(f"http://127.0.0.1:{ports['BRIDGE_PORT']}/")
    finally:
        os.killpg(demo.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        output, _ = demo.communicate(timeout=60)
    logs = "".join(f"\n--- {p.name}\n" + p.read_text()[-2000:]
                   for p in sorted((tmp_path / "demo" / "logs").glob("*.log")))
    assert stored > 0, output + logs
    assert page.status_code == 200 and "admin-api" in page.text and "ingest" in page.text
    assert f"http://127.0.0.1:{ports['API_PORT']}/metrics" in output
    assert f"http://127.0.0.1:{ports['BRIDGE_PORT']}/" in output
    assert "stopped" in output

    def closed(port: int) -> bool:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
        except httpx.HTTPError:
            return True
        return False

    for port in ports.values():  # everything it started is gone
        assert wait_for(lambda port=port: closed(port), bool, timeout=20), port


def test_the_image_build_context_holds_what_the_dockerfile_copies_and_no_more():
    """What ``docker build .`` would send, by the .dockerignore rules (the simple ones used
    here: names and folders), compared with what the Dockerfile copies."""
    import fnmatch

    rules = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]

    def ignored(relative: str) -> bool:
        parts = relative.split("/")
        return any(fnmatch.fnmatch(relative, rule) or fnmatch.fnmatch(parts[0], rule)
                   or (rule.startswith("**/") and rule[3:] in parts)
                   or relative.startswith(rule.rstrip("/") + "/") for rule in rules)

    copied = {name for line in (ROOT / "Dockerfile").read_text().splitlines()
              if line.startswith("COPY ") for name in line.split()[1:-1]}
    for name in copied:
        assert not ignored(name), f"the Dockerfile copies {name}, which .dockerignore drops"
    for left_behind in (".git", ".venv", ".venv-old", "tests", "build", ".demo", "bench",
                        "grafana/schema-check/node_modules", "bridge/__pycache__"):
        assert ignored(left_behind), left_behind
