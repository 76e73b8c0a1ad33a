"""The memory and CPU a process may use: its cgroup's limits, or the host's.

Inside a container, 80 % memory means 80 % of the container's limit, not of the host; the
same for CPU against the container's quota. Both cgroup versions are read: v2
(``memory.max``, ``cpu.max``) and v1 (``memory.limit_in_bytes``, ``cpu.cfs_quota_us`` and
``cpu.cfs_period_us``), walking from the process's own cgroup up to the root and taking the
tightest limit. The roots are injectable (as prometheus_client's process collector takes
its /proc root), so tests point them at real file layouts.

The parsers are pure functions; ``Limits`` does the (few, small) file reads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# v1 reports "no limit" as a huge number (the page-rounded maximum of a signed 64-bit).
_UNLIMITED = 1 << 62


def cgroup_paths(proc_cgroup: str) -> dict[str, str]:
    """``/proc/<pid>/cgroup`` -> {controller: path}; the v2 hierarchy is ``""``."""
    out: dict[str, str] = {}
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if not controllers:
            out[""] = path
        for name in controllers.split(","):
            if name:
                out[name] = path
    return out


def parse_memory_limit(text: str) -> int | None:
    """``memory.max`` ("max" or bytes) or ``memory.limit_in_bytes``; None: no limit."""
    text = text.strip()
    if not text or text == "max":
        return None
    value = int(text)
    return None if value <= 0 or value >= _UNLIMITED else value


def parse_cpu_max(text: str) -> float | None:
    """``cpu.max`` ("max 100000" or "200000 100000") as cores; None: no quota."""
    parts = text.split()
    if not parts or parts[0] == "max":
        return None
    period = int(parts[1]) if len(parts) > 1 else 100_000
    quota = int(parts[0])
    return quota / period if quota > 0 and period > 0 else None


def parse_cfs(quota: str, period: str) -> float | None:
    """v1 ``cpu.cfs_quota_us`` (-1: none) and ``cpu.cfs_period_us`` as cores."""
    q, p = int(quota.strip()), int(period.strip())
    return q / p if q > 0 and p > 0 else None


def ancestors(path: str) -> list[str]:
    """A cgroup path and each parent up to the root: "/a/b" -> ["/a/b", "/a", "/"]."""
    parts = [p for p in path.split("/") if p]
    return ["/" + "/".join(parts[:n]) for n in range(len(parts), -1, -1)]


@dataclass(frozen=True)
class Limits:
    """Reads one process's limits under ``cgroup_root`` (and ``proc_root``)."""

    cgroup_root: str = "/sys/fs/cgroup"
    proc_root: str = "/proc"

    def _read(self, *parts: str) -> str | None:
        try:
            return Path(self.cgroup_root, *(p.lstrip("/") for p in parts)).read_text()
        except (OSError, ValueError):
            return None

    def _paths(self, pid: int) -> dict[str, str]:
        try:
            return cgroup_paths(Path(self.proc_root, str(pid), "cgroup").read_text())
        except OSError:
            return {}

    def memory_bytes(self, pid: int) -> int | None:
        """The tightest memory limit over the process's cgroups; None: none set."""
        paths, found = self._paths(pid), []
        if "memory" in paths:  # v1
            for path in ancestors(paths["memory"]):
                found += _limit(self._read("memory", path, "memory.limit_in_bytes"))
        if "" in paths:  # v2 (the unified hierarchy; "unified/" in hybrid layouts)
            for base in ("", "unified"):
                for path in ancestors(paths[""]):
                    found += _limit(self._read(base, path, "memory.max"))
        return min(found) if found else None

    def cpu_cores(self, pid: int) -> float | None:
        """The tightest CPU quota over the process's cgroups, in cores; None: none set."""
        paths, found = self._paths(pid), []
        for controller in ("cpu", "cpu,cpuacct"):
            if "cpu" not in paths:
                break
            for path in ancestors(paths["cpu"]):
                quota = self._read(controller, path, "cpu.cfs_quota_us")
                period = self._read(controller, path, "cpu.cfs_period_us")
                if quota is not None and period is not None:
                    try:
                        value = parse_cfs(quota, period)
                    except ValueError:
                        continue
                    if value is not None:
                        found.append(value)
        if "" in paths:
            for base in ("", "unified"):
                for path in ancestors(paths[""]):
                    text = self._read(base, path, "cpu.max")
                    try:
                        value = parse_cpu_max(text) if text is not None else None
                    except ValueError:
                        continue
                    if value is not None:
                        found.append(value)
        return min(found) if found else None


def _limit(text: str | None) -> list[int]:
    try:
        value = parse_memory_limit(text) if text is not None else None
    except ValueError:  # not a number: no limit read from this file
        return []
    return [] if value is None else [value]


def host_cores() -> float:
    """CPUs this process may run on (its affinity), at least one."""
    try:
        return float(len(os.sched_getaffinity(0)) or 1)
    except AttributeError:  # not on Linux
        return float(os.cpu_count() or 1)
