"""A bounded on-disk buffer of line-protocol batches that survives restarts.

Each batch is one file, named by a sequence number, written to a temporary name and
renamed, so a crash never leaves half a batch. Batches go out oldest first; past the size
bound the oldest are deleted and their points counted as dropped.
"""

from __future__ import annotations

import os
from pathlib import Path

_SUFFIX = ".lp"


class DiskBuffer:
    """FIFO of (retention policy, body) batches in a directory."""

    def __init__(self, directory: str | Path, max_bytes: int) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.dropped_points = 0
        for leftover in self.dir.glob("*.tmp"):
            leftover.unlink(missing_ok=True)
        self._files = sorted(self.dir.glob("*" + _SUFFIX))
        self._bytes = sum(f.stat().st_size for f in self._files)
        self._next = int(self._files[-1].name.split("-", 1)[0]) + 1 if self._files else 0

    def __len__(self) -> int:
        return len(self._files)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def push(self, rp: str, body: bytes) -> None:
        """Append a batch; drop the oldest batches while over the bound."""
        if not body:
            return
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
        while self._bytes > self.max_bytes and len(self._files) > 1:
            oldest = self._files.pop(0)
            self.dropped_points += self._lines(oldest)
            self._bytes -= oldest.stat().st_size
            oldest.unlink(missing_ok=True)

    def peek(self) -> tuple[str, bytes] | None:
        """The oldest batch as (retention policy, body), without removing it."""
        if not self._files:
            return None
        path = self._files[0]
        rp = path.name[len("0000000000000000-"):-len(_SUFFIX)]
        return ("" if rp == "default" else rp), path.read_bytes()

    def pop(self) -> None:
        """Remove the oldest batch (after it was written)."""
        if self._files:
            path = self._files.pop(0)
            self._bytes -= path.stat().st_size
            path.unlink(missing_ok=True)

    @staticmethod
    def _lines(path: Path) -> int:
        try:
            return path.read_bytes().count(b"\n")
        except OSError:
            return 0
