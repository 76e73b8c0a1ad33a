"""A real influxd (Debian's influxdb 1.6.7) on free loopback ports with a temporary directory."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from examples.demo import influx_config


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class InfluxServer:
    """Start/stop/restart an influxd whose data survives restarts until ``close``."""

    def __init__(self, auth: bool = False) -> None:
        binary = shutil.which("influxd")
        if binary is None:
            raise RuntimeError("influxd not found: `make test` installs Debian's influxdb")
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix="influxd-"))
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = influx_config(self.dir, self.port, _free_port(), auth=auth)
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None
        self.auth: tuple[str, str] | None = None
        self.start()
        if auth:  # the first user may be created without credentials
            self.query("CREATE USER admin WITH PASSWORD 'adm1n-pw' WITH ALL PRIVILEGES")
            self.auth = ("admin", "adm1n-pw")

    def start(self) -> None:
        log = open(self.dir / "influxd.log", "ab")
        self.proc = subprocess.Popen([self.binary, "-config", str(self.config)],
                                     stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/ping", timeout=1).status_code == 204:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("influxd did not start: " + (self.dir / "influxd.log").read_text())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def query(self, q: str, db: str | None = None, epoch: str = "ms") -> list[dict[str, Any]]:
        """Run InfluxQL; returns the series of the first statement's result."""
        params = {"q": q, "epoch": epoch}
        if db:
            params["db"] = db
        response = httpx.post(self.url + "/query", params=params, timeout=30, auth=self.auth)
        response.raise_for_status()
        result = response.json()["results"][0]
        if "error" in result:
            raise RuntimeError(result["error"])
        return result.get("series", [])

    def write(self, db: str, body: bytes, precision: str = "ms") -> httpx.Response:
        return httpx.post(self.url + "/write", params={"db": db, "precision": precision},
                          content=body, timeout=30, auth=self.auth)


def cumulative_buckets(series: list[dict[str, Any]]) -> dict[float, float]:
    """The answer of ``SELECT sum(/^le_/) ...`` (each bucket's own requests, as columns
    ``sum_le_<bound>``) as cumulative counts per bound, +Inf the total. Written here
    apart from the bridge's reader, so tests do not check it against itself."""
    own: dict[float, float] = {}
    for one in series:
        for row in one["values"]:
            for column, value in zip(one["columns"], row, strict=True):
                if column.startswith("sum_le_") and value is not None:
                    bound = float(column[len("sum_le_"):])
                    own[bound] = own.get(bound, 0.0) + value
    out: dict[float, float] = {}
    total = 0.0
    for bound in sorted(own):
        total += own[bound]
        out[bound] = total
    out[float("inf")] = total
    return out
