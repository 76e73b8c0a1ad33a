"""CPU, memory, threads, file descriptors and disk through psutil, sampled at scrape time.

Nothing here runs per request. The adapters call ``collect`` from a worker thread so that
psutil's system calls never block the event loop. ``pids`` and ``process_factory`` are
injectable: tests point them at known processes, multiprocess mode at the worker siblings.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import psutil
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

_MB = 1024.0 * 1024.0
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
    """Process and host resource gauges for one service."""

    def __init__(
        self,
        service: str,
        disk_path: str = "/",
        pids: Callable[[], Iterable[int]] | None = None,
        process_factory: Callable[[int], Any] = psutil.Process,
    ) -> None:
        self._service = service
        self._disk_path = disk_path
        self._pids = pids or (lambda: [os.getpid()])
        self._process_factory = process_factory
        self._processes: dict[int, Any] = {}
        # The first cpu_percent() call only sets the baseline; prime it now.
        psutil.cpu_percent(interval=None)
        for pid in self._pids():
            self._process(pid)

    def _process(self, pid: int) -> Any:
        proc = self._processes.get(pid)
        if proc is None:
            proc = self._processes[pid] = self._process_factory(pid)
            proc.cpu_percent(interval=None)
        return proc

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Yield the resource families (called by prometheus_client at scrape time)."""
        labels = ["service", "pid"]
        cpu = GaugeMetricFamily(
            "service_cpu_percent",
            "Process CPU use since the previous scrape, percent of one core.",
            labels=labels,
        )
        rss = GaugeMetricFamily(
            "service_memory_rss_megabytes", "Process resident memory in MiB.", labels=labels
        )
        mem_pct = GaugeMetricFamily(
            "service_memory_percent",
            "Process resident memory as a percent of the host's total memory.",
            labels=labels,
        )
        threads = GaugeMetricFamily("service_threads", "Process threads.", labels=labels)
        fds = GaugeMetricFamily("service_open_fds", "Process open file descriptors.", labels=labels)
        alive = set()
        for pid in self._pids():
            try:
                proc = self._process(pid)
                with proc.oneshot():
                    values = (
                        proc.cpu_percent(interval=None),
                        proc.memory_info().rss / _MB,
                        proc.memory_percent(),
                        proc.num_threads(),
                        proc.num_fds() if hasattr(proc, "num_fds") else proc.num_handles(),
                    )
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            alive.add(pid)
            label_values = [self._service, str(pid)]
            for family, value in zip((cpu, rss, mem_pct, threads, fds), values, strict=False):
                family.add_metric(label_values, float(value))
        for pid in list(self._processes):
            if pid not in alive:
                del self._processes[pid]
        yield from (cpu, rss, mem_pct, threads, fds)

        disk = GaugeMetricFamily(
            "service_disk_usage_percent", "Used space of a filesystem, percent.",
            labels=["service", "path"],
        )
        try:
            disk.add_metric([self._service, self._disk_path],
                            psutil.disk_usage(self._disk_path).percent)
        except OSError:
            pass  # a missing path shows as an absent series, not an error page
        yield disk
        yield _gauge("system_cpu_percent", "Host CPU use since the previous scrape, percent.",
                     self._service, psutil.cpu_percent(interval=None))
        yield _gauge("system_memory_percent", "Host memory in use, percent.",
                     self._service, psutil.virtual_memory().percent)


def _gauge(name: str, doc: str, service: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=["service"])
    family.add_metric([service], float(value))
    return family
