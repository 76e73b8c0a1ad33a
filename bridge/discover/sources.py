"""The discovery sources: files watched for changes, and HTTP endpoints polled. Thin: each
reads its documents and hands them to ``groups``; a source that cannot be read keeps its
last good targets and says why (Prometheus does the same)."""

from __future__ import annotations

import asyncio
import glob
import logging
import os
from collections.abc import Awaitable, Callable

import aiohttp

from ..bodies import TooLarge, read_bounded
from ..config import FileSD, HttpSD, Target
from ..redact import redact
from ..slices import small_young_generations
from .groups import GroupError, parse, targets_of

log = logging.getLogger("promflux.bridge.discovery")
MAX_BYTES = 10 * 1000**2  # per document


class FileSource:
    """Targets from the files matching ``config.files``, re-read when one changes."""

    def __init__(self, config: FileSD) -> None:
        self.config = config
        self.targets: list[Target] = []
        self.problems: dict[str, list[str]] = {}  # file -> what was wrong with it
        self._stats: dict[str, tuple[int, int]] = {}
        self._by_file: dict[str, list[Target]] = {}

    def _stat(self) -> dict[str, tuple[int, int]]:
        stats: dict[str, tuple[int, int]] = {}
        for path in sorted({p for pattern in self.config.files for p in glob.glob(pattern)}):
            try:
                stat = os.stat(path)
            except OSError:
                continue  # removed between the glob and the stat
            stats[path] = (stat.st_mtime_ns, stat.st_size)
        return stats

    async def _stat_changed(self) -> bool:
        return await asyncio.to_thread(self._stat) != self._stats

    def refresh(self) -> bool:
        """Read the files that changed since the last call; True if the targets changed."""
        stats = self._stat()
        if stats == self._stats:
            return False
        for path in set(self._by_file) - set(stats):
            del self._by_file[path]
            self.problems.pop(path, None)
        for path, seen in stats.items():
            if self._stats.get(path) != seen:
                self._read(path, seen[1])
        self._stats = stats
        before, self.targets = self.targets, [t for p in sorted(self._by_file)
                                              for t in self._by_file[p]]
        return before != self.targets

    def _read(self, path: str, size: int) -> None:
        try:
            if size > MAX_BYTES:
                raise GroupError(f"larger than {MAX_BYTES} bytes")
            with open(path, encoding="utf-8") as f:
                text = f.read(MAX_BYTES + 1)
            targets, problems = targets_of(
                parse(text, yaml_ok=not path.endswith(".json")), self.config, path)
        except (OSError, UnicodeDecodeError, GroupError) as exc:
            problem = f"{path}: {exc}" if not str(exc).startswith(path) else str(exc)
            self.problems[path] = [problem + " (its last good targets are kept)"]
            log.warning("file discovery: %s", self.problems[path][0])
            return
        self._by_file[path] = targets
        self.problems[path] = problems
        for problem in problems:
            log.warning("file discovery: %s", problem)

    async def run(self, changed: Callable[[], Awaitable[None]]) -> None:
        while True:
            if await self._stat_changed():
                with small_young_generations():  # (100,000 targets: see ``slices``)
                    if await asyncio.to_thread(self.refresh):
                        await changed()
            await asyncio.sleep(self.config.refresh_interval)


class HttpSource:
    """Targets from an HTTP SD endpoint, polled every ``refresh_interval``."""

    def __init__(self, config: HttpSD) -> None:
        self.config = config
        self.targets: list[Target] = []
        self.problems: dict[str, list[str]] = {}
        self.where = redact(config.url)

    async def refresh(self, session: aiohttp.ClientSession) -> bool:
        headers = {"Accept": "application/json"}
        if self.config.bearer_token is not None:
            headers["Authorization"] = f"Bearer {self.config.bearer_token.resolve()}"
        try:
            async with session.get(self.config.url, headers=headers,
                                   timeout=aiohttp.ClientTimeout(total=30)) as response:
                if response.status != 200:
                    raise GroupError(f"HTTP {response.status}")
                if response.content_type != "application/json":
                    raise GroupError(f"Content-Type {response.content_type!r}, "
                                     "not application/json")
                try:
                    body = await read_bounded(response, MAX_BYTES)
                except TooLarge:
                    raise GroupError(f"larger than {MAX_BYTES} bytes") from None
            # In a thread: 100,000 targets take seconds to check.
            with small_young_generations():
                targets, problems, changed = await asyncio.to_thread(self._targets, body)
        except (aiohttp.ClientError, TimeoutError, UnicodeDecodeError, GroupError) as exc:
            text = f"{self.where}: {exc or type(exc).__name__} (its last good targets are kept)"
            if self.problems.get(self.where) != [text]:
                log.warning("HTTP discovery: %s", text)
            self.problems = {self.where: [text]}
            return False
        self.problems = {self.where: problems} if problems else {}
        for problem in problems:
            log.warning("HTTP discovery: %s", problem)
        self.targets = targets
        return changed

    def _targets(self, body: bytes) -> tuple[list[Target], list[str], bool]:
        """The answer's targets, its problems, and whether the targets changed."""
        targets, problems = targets_of(parse(body.decode("utf-8"), yaml_ok=False),
                                       self.config, self.where)
        return targets, problems, targets != self.targets

    async def run(self, session: aiohttp.ClientSession,
                  changed: Callable[[], Awaitable[None]]) -> None:
        while True:
            if await self.refresh(session):
                with small_young_generations():
                    await changed()
            await asyncio.sleep(self.config.refresh_interval)
