"""Resources as a person should read them: CPU from counters (the same figure whoever
else scrapes), memory and CPU against a container's limits."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from promflux.exporter.cgroups import (
    Limits,
    ancestors,
    cgroup_paths,
    parse_cfs,
    parse_cpu_max,
    parse_memory_limit,
)

from .conftest import Server, free_port, scrape, scraped_after, uvicorn_server, wait_for
from .test_bridge_e2e import start_bridge

CLK_TCK = os.sysconf("SC_CLK_TCK")


def test_cgroup_files_parse_as_the_kernel_writes_them():
    assert cgroup_paths("12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/x\n") == {
        "memory": "/docker/abc", "cpu": "/docker/abc", "cpuacct": "/docker/abc", "": "/x"}
    assert parse_memory_limit("max\n") is None and parse_memory_limit("536870912\n") == 2**29
    assert parse_memory_limit("9223372036854771712\n") is None  # v1's "no limit"
    assert parse_cpu_max("max 100000\n") is None and parse_cpu_max("150000 100000\n") == 1.5
    assert parse_cfs("-1\n", "100000\n") is None and parse_cfs("50000", "100000") == 0.5
    assert ancestors("/a/b") == ["/a/b", "/a", "/"] and ancestors("/") == ["/"]


def fake_host(tmp_path: Path, proc_cgroup: str, files: dict[str, str]) -> Limits:
    """A /proc and a cgroup root laid out as a real kernel lays them out."""
    (tmp_path / "proc" / "42").mkdir(parents=True)
    (tmp_path / "proc" / "42" / "cgroup").write_text(proc_cgroup)
    for name, text in files.items():
        path = tmp_path / "cgroup" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return Limits(cgroup_root=str(tmp_path / "cgroup"), proc_root=str(tmp_path / "proc"))


def test_cgroup_v2_limits_the_tightest_up_the_tree(tmp_path):
    limits = fake_host(tmp_path, "0::/system.slice/app.service\n", {
        "system.slice/app.service/memory.max": "max\n",
        "system.slice/memory.max": "536870912\n",  # the slice's limit applies below it
        "memory.max": "max\n",
        "system.slice/app.service/cpu.max": "150000 100000\n",
        "system.slice/cpu.max": "max 100000\n",
    })
    assert limits.memory_bytes(42) == 512 * 1024**2 and limits.cpu_cores(42) == 1.5


def test_cgroup_v1_limits(tmp_path):
    limits = fake_host(tmp_path, "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n", {
        "memory/docker/abc/memory.limit_in_bytes": "268435456\n",
        "memory/memory.limit_in_bytes": "9223372036854771712\n",
        "cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "50000\n",
        "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
    })
    assert limits.memory_bytes(42) == 256 * 1024**2 and limits.cpu_cores(42) == 0.5
    unlimited = fake_host(tmp_path / "none", "4:memory:/\n3:cpu:/\n", {
        "memory/memory.limit_in_bytes": "9223372036854771712\n",
        "cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"})
    assert unlimited.memory_bytes(42) is None and unlimited.cpu_cores(42) is None
    broken = fake_host(tmp_path / "broken", "4:memory:/x\n", {
        "memory/x/memory.limit_in_bytes": "lots\n"})
    assert broken.memory_bytes(42) is None  # unreadable: no limit, never a crash


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture()
def memory_cgroup():
    """A real v1 memory cgroup with a 256 MiB limit on this machine."""
    root = Path("/sys/fs/cgroup/memory")
    group = root / f"promflux-test-{uuid.uuid4().hex[:8]}"
    try:
        group.mkdir()
        (group / "memory.limit_in_bytes").write_text(str(256 * 1024**2))
    except OSError as exc:
        pytest.skip(f"cannot make a memory cgroup here: {exc}")
    yield group
    for pid in (group / "cgroup.procs").read_text().split():
        subprocess.run(["kill", "-9", pid], check=False)
    time.sleep(0.2)
    group.rmdir()


def test_memory_percent_is_of_the_containers_limit(memory_cgroup):
    port = free_port()
    # The service starts inside the cgroup (as in a container) and holds 200 MiB.
    argv = ["sh", "-c", f"echo $$ > {memory_cgroup}/cgroup.procs && exec {sys.executable} "
            f"-m uvicorn tests.apps.fastapi_app:app --host 127.0.0.1 --port {port} "
            "--log-level warning"]
    server = Server(argv, port, env={"HOLD_MB": "200"})
    try:
        samples = scrape(server.url)
        pid = int(next(iter(samples.label_values("service_memory_percent", "pid"))))
        assert samples.value("service_memory_limit_bytes") == 256 * 2**20
        expected = 100 * rss_mb(pid) / 256
        shown = samples.value("service_memory_percent", pid=str(pid))
        assert shown > 80 and abs(shown - expected) < 3, (shown, expected)  # over the line
    finally:
        server.stop()


class ProcCpu:
    """/proc/<pid>/stat CPU time sampled at 20 Hz: the truth to compare with."""

    def __init__(self, pid: int) -> None:
        self.pid, self.samples = pid, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
            self.samples.append((time.time(), (int(fields[11]) + int(fields[12])) / CLK_TCK))
            self._stop.wait(0.05)

    def at(self, when: float) -> float:
        """CPU seconds at wall time ``when`` (linear between the nearest samples)."""
        before = max((s for s in self.samples if s[0] <= when), default=self.samples[0])
        after = min((s for s in self.samples if s[0] >= when), default=self.samples[-1])
        if after[0] == before[0]:
            return before[1]
        return before[1] + (after[1] - before[1]) * (when - before[0]) / (after[0] - before[0])

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def test_cpu_percent_is_the_same_whoever_else_scrapes(tmp_path, influxdb, capsys):
    service = uvicorn_server("tests.apps.fastapi_app:app", env={"BURN_PERCENT": "40"})
    bridge = start_bridge(tmp_path, influxdb, [("admin-api", service.url)], "cpu",
                          interval="2s")
    pid = int(next(iter(scrape(service.url).label_values("service_cpu_seconds_total", "pid"))))
    truth = ProcCpu(pid)
    stop = threading.Event()

    def second_scraper() -> None:  # a person with /metrics open, refreshing every second
        while not stop.is_set():
            httpx.get(service.url + "/metrics")
            stop.wait(1.0)

    other = threading.Thread(target=second_scraper, daemon=True)
    other.start()
    try:
        started = time.time()
        scraped_after(bridge.url, started)
        rows = wait_for(lambda: influxdb.query(
            f'SELECT "cpu_percent" FROM "raw_7d"."resources" WHERE "pid" = \'{pid}\' '
            f'AND time > {int(started * 1e9)}', db="cpu"),
            lambda r: r and len(r[0]["values"]) >= 6, timeout=60)
    finally:
        stop.set()
        other.join()
        truth.stop()
        bridge.stop()
        service.stop()
    cores = len(os.sched_getaffinity(0))  # no CPU quota here: the host's cores
    points = [(ts / 1000, value) for ts, value in rows[0]["values"]]
    errors = []
    for (t0, _), (t1, shown) in zip(points, points[1:], strict=False):
        expected = 100 * (truth.at(t1) - truth.at(t0)) / (t1 - t0) / cores
        errors.append(round(abs(shown - expected), 2))
    # Every interval within 2 points of /proc, though another scraper reads /metrics
    # every second (a "since the last scrape" figure read 134 % for 12 % that way).
    with capsys.disabled():
        print(f"\ncpu: {len(errors)} intervals, bridge vs /proc: max error {max(errors)} points, "
              f"mean {sum(errors) / len(errors):.2f}")
    assert len(errors) >= 5 and max(errors) <= 2.0, (errors, points)
