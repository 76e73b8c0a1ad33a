"""Counter state kept across a bridge restart: one small JSON file per target.

Written at a clean shutdown, after the writer has put every point in InfluxDB or the disk
buffer, so the saved values match what was counted. Taken (read, then deleted) at start:
a later crash can never reuse it, which could count an increase twice. After a crash there
is no file, and counting starts from a fresh baseline (an increase is lost, never
invented). Files that cannot be read are moved aside with a log line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger("promflux.bridge.counters")

MAX_BYTES = 64 * 1024 * 1024  # far above any real target's state; a guard against junk


class CounterStates:
    """Saved counter states in ``directory``, by target."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def _path(self, service: str, url: str) -> Path:
        digest = hashlib.sha256(f"{service}\n{url}".encode()).hexdigest()[:24]
        return self.dir / f"{digest}.json"

    def save(self, service: str, url: str, state: dict[str, Any]) -> None:
        """Write atomically (a crash leaves the old file or the new one, never half)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self._path(service, url)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, separators=(",", ":")))
        os.replace(tmp, path)

    def names(self) -> set[str]:
        """The file names of the saved states (one listing, where a ``take`` per target
        would look for each file)."""
        try:
            return set(os.listdir(self.dir))
        except OSError:
            return set()

    def take(self, service: str, url: str, names: set[str] | None = None
             ) -> dict[str, Any] | None:
        """The saved state of a target, removed from disk; None when there is none (or
        when its file is not among ``names``, a listing made just before)."""
        path = self._path(service, url)
        if names is not None and path.name not in names:
            return None
        try:
            if path.stat().st_size > MAX_BYTES:
                raise ValueError("too large")
            state = json.loads(path.read_text())
            if not isinstance(state, dict):
                raise ValueError("not an object")
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            self._set_aside(path, str(exc))
            return None
        path.unlink(missing_ok=True)
        return state

    def _set_aside(self, path: Path, why: str) -> None:
        try:
            os.replace(path, path.with_suffix(".bad"))
        except OSError:
            path.unlink(missing_ok=True)
        log.warning("counter state %s not used (%s): counting starts afresh", path.name, why)
