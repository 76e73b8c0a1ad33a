"""A bounded on-disk buffer of line-protocol batches that survives restarts.

Each batch is one file, named by a sequence number and its retention policy, written to a
temporary name and renamed, so a crash never leaves half a batch. Batches go out oldest
first; past the size bound the oldest are deleted and their points counted as dropped.

Files are blocking I/O: the writer calls these methods from a worker thread, one at a
time. A file that is not ours (a foreign name) or cannot be read is moved to
``quarantine/`` with a log line, so it never blocks start-up or writing.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("promflux.bridge.buffer")

_SUFFIX = ".lp"
_NAME = re.compile(r"^(\d{16,19})-([A-Za-z0-9_]{1,64})\.lp$")
QUARANTINE = "quarantine"
COUNTERS = "counters"  # the counter states kept across restarts (store.counters)


@dataclass(frozen=True)
class Entry:
    """One buffered batch; ``remove`` takes this very entry (by its file), never another."""

    path: Path
    rp: str
    body: bytes


class DiskBuffer:
    """FIFO of (retention policy, body) batches in a directory."""

    def __init__(self, directory: str | Path, max_bytes: int,
                 rps: Iterable[str] | None = None) -> None:
        """``rps``: the retention policies batches may be for ("" is the default one);
        a file for any other is not ours (quarantined). None: any."""
        self.dir = Path(directory)
        self.rps = None if rps is None else {rp or "default" for rp in rps}
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.dropped_points = 0
        self.quarantined = 0
        self._files: list[Path] = []
        self._bytes = 0
        files = []
        for path in self.dir.iterdir():
            if path.name in (QUARANTINE, COUNTERS):
                continue
            match = _NAME.match(path.name)
            if path.name.endswith(".tmp") and path.is_file():
                path.unlink(missing_ok=True)  # a write a crash interrupted
            elif match and path.is_file() and (self.rps is None or match[2] in self.rps):
                files.append((int(match[1]), path))
            else:
                self._quarantine(path, "not a buffer file")
        files.sort()  # by sequence number: the order they were pushed in
        self._files = [path for _, path in files]
        self._bytes = sum(self._size(f) for f in self._files)
        self._next = files[-1][0] + 1 if files else 0

    def __len__(self) -> int:
        return len(self._files)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    @property
    def points(self) -> int:
        """Points waiting on disk (reads every file: for shutdown and tests, not per
        scrape)."""
        return sum(self._lines(path) for path in self._files)

    def push(self, rp: str, body: bytes) -> int:
        """Append a batch; drop the oldest batches while over the bound. Returns the points
        dropped to make room (also added to ``dropped_points``)."""
        if not body:
            return 0
        name = f"{self._next:016d}-{rp or 'default'}{_SUFFIX}"
        self._next += 1
        tmp = self.dir / (name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        final = self.dir / name
        os.replace(tmp, final)
        self._files.append(final)
        self._bytes += len(body)
        dropped = 0
        while self._bytes > self.max_bytes and len(self._files) > 1:
            oldest = self._files.pop(0)
            dropped += self._lines(oldest)
            self._bytes -= self._size(oldest)
            oldest.unlink(missing_ok=True)
        if dropped:
            self.dropped_points += dropped
            log.warning("buffer over %d bytes: dropped the oldest %d points", self.max_bytes,
                        dropped)
        return dropped

    def peek(self) -> Entry | None:
        """The oldest readable batch, without removing it (unreadable ones are quarantined)."""
        while self._files:
            path = self._files[0]
            try:
                body = path.read_bytes()
            except OSError as exc:
                self._quarantine(path, f"unreadable: {exc}")
                continue
            rp = path.name.split("-", 1)[1][:-len(_SUFFIX)]
            return Entry(path, "" if rp == "default" else rp, body)
        return None

    def rewrite(self, entry: Entry, body: bytes) -> None:
        """Replace ``entry``'s content with ``body`` (what is left of it), atomically."""
        if entry.path not in self._files:
            return
        tmp = entry.path.with_name(entry.path.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, entry.path)
        self._bytes += len(body) - len(entry.body)

    def remove(self, entry: Entry) -> None:
        """Remove ``entry`` (after it was written); nothing else, whatever happened since."""
        try:
            self._files.remove(entry.path)
        except ValueError:
            return  # already gone (trimmed while over the bound)
        self._bytes -= len(entry.body)
        entry.path.unlink(missing_ok=True)

    def _quarantine(self, path: Path, why: str) -> None:
        """Move ``path`` aside; it leaves the queue even when the move fails."""
        if path in self._files:
            self._files.remove(path)
            self._bytes -= self._size(path)
        target = self.dir / QUARANTINE
        try:
            target.mkdir(exist_ok=True)
            os.replace(path, target / path.name)
        except OSError as exc:
            log.error("buffer: could not quarantine %s (%s): %s", path, why, exc)
            return
        self.quarantined += 1
        log.warning("buffer: moved %s to %s/ (%s)", path.name, target, why)

    @staticmethod
    def _size(path: Path) -> int:
        try:
            return path.stat().st_size
        except OSError:
            return 0

    @staticmethod
    def _lines(path: Path) -> int:
        try:
            return path.read_bytes().count(b"\n")
        except OSError:
            return 0
