"""Several worker processes of one server without a shared metrics directory: each
answers /metrics with its own counts only, so a scrape sees one worker's share. Found from
the process tree where that is reliable (the parent is a known server and has other
children running this same program), and said once, with the fix."""

from __future__ import annotations

from typing import Any

import psutil

SERVERS = ("gunicorn", "uvicorn", "hypercorn", "granian")
_HELPERS = ("resource_tracker", "semaphore_tracker", "forkserver")


def sibling_workers(me: Any = None) -> str | None:
    """How the server runs several workers of this app ("uvicorn runs 2 worker
    processes"), or None when it does not, or cannot be told."""
    try:
        me = me or psutil.Process()
        parent = me.parent()
        if parent is None:
            return None
        command = " ".join(parent.cmdline())
        server = next((name for name in SERVERS if name in command), None)
        if server is None:
            return None
        exe = me.exe()
        siblings = 0
        for child in parent.children():
            if child.pid == me.pid:
                continue
            line = " ".join(child.cmdline())
            if child.exe() == exe and not any(helper in line for helper in _HELPERS):
                siblings += 1
    except (psutil.Error, OSError):
        return None
    return f"{server} runs {siblings + 1} worker processes" if siblings else None


def advice(found: str) -> str:
    return (f"promflux: {found} and PROMETHEUS_MULTIPROC_DIR is not set, so each /metrics "
            "answer holds one worker's counts only; set PROMETHEUS_MULTIPROC_DIR to an empty "
            "directory before the workers start (README, several worker processes)")
