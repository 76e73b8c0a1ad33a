"""Real servers on loopback, scraped over HTTP and parsed with prometheus_client's parser."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, settings
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")

# Property tests judge results, not speed: on a loaded machine an example may take longer
# than hypothesis's default 200 ms deadline, or data may generate slowly.
settings.register_profile("promflux", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("promflux")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A service started as a subprocess on a free loopback port."""

    def __init__(self, argv: list[str], port: int, env: dict[str, str] | None = None,
                 ready_path: str = "/health", scheme: str = "http") -> None:
        self.port = port
        self.url = f"{scheme}://127.0.0.1:{port}"
        self.log = tempfile.NamedTemporaryFile(prefix="server-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, env={**os.environ, **(env or {})},
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.output()}")
            try:
                status = httpx.get(self.url + ready_path, timeout=1, verify=False).status_code
                # (a bridge's /healthz answers 503 while degraded: it is running)
                if status < 500 or (status == 503 and ready_path == "/healthz"):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start:\n{self.output()}")

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def uvicorn_server(app: str, *args: str, env: dict[str, str] | None = None) -> Server:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "warning", *args]
    return Server(argv, port, env)


def aiohttp_server(app: str, env: dict[str, str] | None = None) -> Server:
    port = free_port()
    argv = [sys.executable, "-m", "aiohttp.web", "-H", "127.0.0.1", "-P", str(port), app]
    return Server(argv, port, env)


class Samples:
    """Parsed /metrics: look samples up by name and labels."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples = [
            (s.name, s.labels, s.value)
            for family in text_string_to_metric_families(text)
            for s in family.samples
        ]

    def find(self, name: str, **labels: str) -> list[tuple[str, dict[str, str], float]]:
        return [s for s in self.samples
                if s[0] == name and all(s[1].get(k) == v for k, v in labels.items())]

    def value(self, name: str, **labels: str) -> float:
        found = self.find(name, **labels)
        assert len(found) == 1, f"{name}{labels}: {len(found)} samples: {found}"
        return found[0][2]

    def get(self, name: str, default: float = 0.0, **labels: str) -> float:
        found = self.find(name, **labels)
        assert len(found) <= 1, f"{name}{labels}: {found}"
        return found[0][2] if found else default

    def label_values(self, name: str, label: str) -> set[str]:
        return {s[1][label] for s in self.samples if s[0] == name and label in s[1]}


def scrape(base_url: str, **headers: str) -> Samples:
    response = httpx.get(base_url + "/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return Samples(response.text)


def wait_for(get: Callable[[], T], ok: Callable[[T], bool], timeout: float = 20.0) -> T:
    """Poll ``get()`` until ``ok`` holds (returns the last value either way).

    The timeout is generous on purpose: a loaded 2-core machine can be slow, and a
    condition that holds returns at once."""
    deadline = time.monotonic() + timeout
    value = get()
    while not ok(value) and time.monotonic() < deadline:
        time.sleep(0.05)
        value = get()
    return value


def bridge_targets(bridge_url: str) -> dict[str, dict[str, Any]]:
    """The bridge's /api/targets by service."""
    return {t["service"]: t for t in httpx.get(bridge_url + "/api/targets").json()}


def scraped_after(bridge_url: str, since: float, services: Iterable[str] | None = None,
                  timeout: float = 30.0) -> dict[str, dict[str, Any]]:
    """Wait until each target (or each of ``services``) has finished a scrape that started
    after ``since`` (wall-clock seconds); returns /api/targets by service."""
    def done(targets: dict[str, dict[str, Any]]) -> bool:
        names = targets.keys() if services is None else services
        return all(n in targets and (targets[n]["last_scrape"] or 0) > since for n in names)

    seen = wait_for(lambda: bridge_targets(bridge_url), done, timeout=timeout)
    assert done(seen), f"no scrape finished after {since}: {seen}"
    return seen


@pytest.fixture()
def api() -> Iterator[Server]:
    """A FastAPI service of its own, for one test."""
    server = uvicorn_server("tests.apps.fastapi_app:app")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fastapi_service() -> Iterator[Server]:
    server = uvicorn_server("tests.apps.fastapi_app:app")
    yield server
    server.stop()


@pytest.fixture(scope="module", params=["entry-point", "middleware"])
def aiohttp_service(request: pytest.FixtureRequest) -> Iterator[Server]:
    env = {"PROMFLUX_AIOHTTP_MIDDLEWARE": "1"} if request.param == "middleware" else {}
    server = aiohttp_server("tests.apps.aiohttp_app:create_app", env)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def influxdb() -> Iterator[Any]:
    from .influx import InfluxServer

    server = InfluxServer()
    yield server
    server.close()


@pytest.fixture()
def alertmanager(tmp_path):
    binary = shutil.which("prometheus-alertmanager")
    if binary is None:
        pytest.fail("prometheus-alertmanager not found: `make test` installs it")
    from .webhook_receiver import Receiver

    receiver = Receiver()
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        "route:\n  receiver: hook\n  group_by: [service, endpoint, metric]\n"
        "  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n"
        f"receivers:\n  - name: hook\n    webhook_configs:\n      - url: {receiver.url}\n"
        "        send_resolved: true\n")
    port = free_port()
    server = Server([binary, f"--config.file={config}", f"--storage.path={tmp_path}/am",
                     f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                    port, ready_path="/-/ready")
    server.receiver = receiver  # type: ignore[attr-defined]
    yield server
    server.stop()
