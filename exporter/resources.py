"""CPU, memory, threads, file descriptors and disk through psutil, read at scrape time.

Nothing here runs per request. The adapters call ``collect`` from a worker thread so that
psutil's system calls never block the event loop. ``pids`` and ``process_factory`` are
injectable: tests point them at known processes, multiprocess mode at the worker siblings.
"""

from __future__ import annotations

import glob
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import psutil
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .cgroups import Limits, host_cores

_PID_IN_FILENAME = re.compile(r"_(\d+)\.db$")


def multiprocess_worker_pids(directory: str) -> list[int]:
    """Live pids that wrote prometheus_client multiprocess files in ``directory``."""
    pids = set()
    for path in glob.glob(os.path.join(directory, "*.db")):
        match = _PID_IN_FILENAME.search(path)
        if match:
            pids.add(int(match.group(1)))
    return sorted(pid for pid in pids if psutil.pid_exists(pid))


class ResourceCollector(Collector):
    """Process and host resources for one service.

    CPU is exported as cumulative seconds (counters), never as "percent since the last
    scrape", which every extra scraper would shorten; the bridge turns the increase over
    its own interval into a percent of the cores the process may use. Memory percent is of
    the cgroup limit when one is set (a container), else of the host's memory.
    """

    def __init__(
        self,
        service: str,
        disk_path: str = "/",
        pids: Callable[[], Iterable[int]] | None = None,
        process_factory: Callable[[int], Any] = psutil.Process,
        limits: Limits | None = None,
    ) -> None:
        # service -> the filesystem shown as its disk: several applications of one
        # process (each instrumented) show the same process under each service name.
        self.services = {service: disk_path}
        self._pids = pids or (lambda: [os.getpid()])
        self._process_factory = process_factory
        self._limits = limits or Limits()
        self._processes: dict[int, Any] = {}
        self._cached: tuple[float, int | None, float | None] | None = None

    def _process(self, pid: int) -> Any:
        proc = self._processes.get(pid)
        if proc is None:
            proc = self._processes[pid] = self._process_factory(pid)
        return proc

    def limits(self) -> tuple[int | None, float | None]:
        """This process's cgroup memory limit (bytes) and CPU quota (cores), re-read at
        most once a minute."""
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] > 60:
            pid = os.getpid()
            self._cached = (now, self._limits.memory_bytes(pid), self._limits.cpu_cores(pid))
        return self._cached[1], self._cached[2]

    def collect(self) -> Iterator[Metric]:
        """Yield the resource families (called by prometheus_client at scrape time)."""
        memory_limit, cpu_quota = self.limits()
        limit_bytes = float(memory_limit or psutil.virtual_memory().total)
        cores = min(cpu_quota or host_cores(), host_cores())
        services = list(self.services)
        yield from self._processes_families(limit_bytes, services)
        yield _gauge("service_memory_limit_bytes",
                     "Memory the service may use: its cgroup limit, else the host's memory.",
                     services, limit_bytes)
        yield _gauge("service_cpu_limit_cores",
                     "CPU cores the service may use: its cgroup quota, else the host's.",
                     services, cores)
        disk = GaugeMetricFamily(
            "service_disk_usage_percent", "Used space of a filesystem, percent.",
            labels=["service", "path"],
        )
        for service, path in self.services.items():
            try:
                disk.add_metric([service, path], psutil.disk_usage(path).percent)
            except OSError:
                pass  # a missing path shows as an absent series, not an error page
        yield disk
        times = psutil.cpu_times()
        busy = sum(times) - times.idle - getattr(times, "iowait", 0.0)
        yield _counter("system_cpu_busy_seconds",
                       "Host CPU time spent busy, all cores, seconds.", services, busy)
        yield _gauge("system_cpu_cores", "Host CPU cores.", services,
                     float(psutil.cpu_count() or 1))
        yield _gauge("system_memory_percent", "Host memory in use, percent.",
                     services, psutil.virtual_memory().percent)

    def _processes_families(self, limit_bytes: float, services: list[str]
                            ) -> Iterator[Metric]:
        labels = ["service", "pid"]
        cpu = CounterMetricFamily(
            "service_cpu_seconds", "Process CPU time, user and system, seconds.",
            labels=labels)
        rss = GaugeMetricFamily(
            "service_memory_rss_bytes", "Process resident memory in bytes.", labels=labels)
        mem_pct = GaugeMetricFamily(
            "service_memory_percent",
            "Process resident memory, percent of the service's memory limit.", labels=labels)
        threads = GaugeMetricFamily("service_threads", "Process threads.", labels=labels)
        fds = GaugeMetricFamily("service_open_fds", "Process open file descriptors.",
                                labels=labels)
        alive = set()
        for pid in self._pids():
            try:
                proc = self._process(pid)
                with proc.oneshot():
                    times = proc.cpu_times()
                    rss_bytes = proc.memory_info().rss
                    values = (
                        times.user + times.system, rss_bytes,
                        100.0 * rss_bytes / limit_bytes, proc.num_threads(),
                        proc.num_fds() if hasattr(proc, "num_fds") else proc.num_handles(),
                    )
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            alive.add(pid)
            families: tuple[CounterMetricFamily | GaugeMetricFamily, ...] = (
                cpu, rss, mem_pct, threads, fds)
            for service in services:
                for family, value in zip(families, values, strict=True):
                    family.add_metric([service, str(pid)], float(value))
        for pid in list(self._processes):
            if pid not in alive:
                del self._processes[pid]
        yield from (cpu, rss, mem_pct, threads, fds)


def _gauge(name: str, doc: str, services: list[str], value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=["service"])
    for service in services:
        family.add_metric([service], float(value))
    return family


def _counter(name: str, doc: str, services: list[str], value: float) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=["service"])
    for service in services:
        family.add_metric([service], float(value))
    return family
