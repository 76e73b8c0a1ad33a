"""Target groups in Prometheus's discovery format -> targets. Pure, no I/O.

A group is ``{"targets": ["host:port", ...], "labels": {...}}``, the format of
Prometheus's file_sd and http_sd. The label ``service`` names the service (required);
``__scheme__`` (default http) and ``__metrics_path__`` (default /metrics) complete the URL;
``instance`` defaults to the address, as in Prometheus, so replicas of one service stay
distinct series; other labels starting with ``__`` are dropped (meta labels); the rest
become tags on every point of the target.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import ValidationError

from ..config import DiscoveryDefaults, Target, expanded_size, label_problem

MAX_TARGETS = 100_000  # per source: more is a broken inventory, not a fleet
MAX_VALUES = 20 * MAX_TARGETS  # values in one document, aliases expanded


class GroupError(ValueError):
    """A discovery document that cannot be read; the message says where and why."""


def parse(text: str, yaml_ok: bool) -> list[Any]:
    """A document's groups (JSON, or YAML for files): the list, unchecked inside."""
    try:
        data = yaml.safe_load(text) if yaml_ok else json.loads(text)
        # YAML aliases can make a small file stand for billions of values.
        if yaml_ok and expanded_size(data, MAX_VALUES) > MAX_VALUES:
            raise GroupError(f"expands to more than {MAX_VALUES} values (YAML aliases?)")
    except RecursionError:
        raise GroupError("nested too deeply") from None
    except (ValueError, yaml.YAMLError) as exc:
        if isinstance(exc, GroupError):
            raise
        raise GroupError(f"not valid {'YAML' if yaml_ok else 'JSON'}: {exc}") from None
    if data is None and yaml_ok:
        return []  # an empty file: no targets
    if not isinstance(data, list):
        raise GroupError("must be a list of {targets: [...], labels: {...}} groups")
    return data


def targets_of(groups: Iterable[Any], defaults: DiscoveryDefaults,
               where: str) -> tuple[list[Target], list[str]]:
    """Valid targets of the groups, and a problem per group that was skipped."""
    targets: list[Target] = []
    problems: list[str] = []
    for number, group in enumerate(groups):
        try:
            targets += _group(group, defaults)
        except GroupError as exc:
            problems.append(f"{where}: group {number}: {exc}")
        if len(targets) > MAX_TARGETS:
            raise GroupError(f"{where}: more than {MAX_TARGETS} targets")
    return targets, problems


def _group(group: Any, defaults: DiscoveryDefaults) -> list[Target]:
    if not isinstance(group, dict) or not isinstance(group.get("targets", []), list):
        raise GroupError("must be a mapping with a list of targets")
    labels = group.get("labels") or {}
    if not isinstance(labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise GroupError("labels must map names to strings")
    labels = dict(labels)
    service = labels.pop("service", "")
    if not service:
        raise GroupError("no service label")
    scheme = labels.pop("__scheme__", "http")
    path = labels.pop("__metrics_path__", "/metrics")
    if scheme not in ("http", "https") or not path.startswith("/"):
        raise GroupError(f"cannot make a URL of scheme {scheme!r} and path {path!r}")
    tags = {k: v for k, v in labels.items() if not k.startswith("__")}
    for name in tags:
        if problem := label_problem(name):
            raise GroupError(problem)
    out = []
    for address in group.get("targets", []):
        if not isinstance(address, str) or not address or any(c in address for c in "/ ?#@"):
            raise GroupError(f"not a host:port address: {address!r}")
        try:
            out.append(Target(
                service=service, url=f"{scheme}://{address}{path}", preset=defaults.preset,
                active=defaults.active, interval=defaults.interval, timeout=defaults.timeout,
                labels={"instance": address, **tags}))
        except ValidationError as exc:
            raise GroupError(f"{address}: {exc.errors()[0]['msg']}") from None
    return out


def shard_of(url: str, count: int) -> int:
    """The shard a target belongs to: Prometheus's hashmod (the low 8 bytes of the MD5 of
    the value, big-endian, modulo ``count``), over the target's URL."""
    digest = hashlib.md5(url.encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest[8:], "big") % count


def merge(sources: Iterable[Iterable[Target]], count: int, index: int) -> list[Target]:
    """Every source's targets, the first of each (service, URL) kept, told apart
    (``distinct``), this shard only."""
    seen: set[tuple[str, str]] = set()
    every = []
    for targets in sources:
        for target in targets:
            key = (target.service, target.url)
            if key not in seen:
                seen.add(key)
                every.append(target)
    return [t for t in distinct(every) if count <= 1 or shard_of(t.url, count) == index]


def _host(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{host}:{parts.port}" if parts.port else host


def distinct(targets: list[Target]) -> list[Target]:
    """Targets of one service kept apart in storage: where a service has several targets,
    each without an ``instance`` label gets one, its host:port (with its path where the
    host:port is shared), so two URLs of a service are never silently merged."""
    by_service: dict[str, list[Target]] = {}
    for target in targets:
        by_service.setdefault(target.service, []).append(target)
    named: dict[tuple[str, str], str] = {}
    for service, group in by_service.items():
        if len(group) < 2 or all("instance" in t.labels for t in group):
            continue  # (discovered targets always have one)
        hosts = [_host(t.url) for t in group]
        seen = Counter(hosts)
        for host, target in zip(hosts, group, strict=True):
            if "instance" not in target.labels:
                named[(service, target.url)] = host + (urlsplit(target.url).path
                                                       if seen[host] > 1 else "")
    if not named:
        return targets
    return [t.model_copy(update={"labels": {**t.labels, "instance": named[key]}})
            if (key := (t.service, t.url)) in named else t for t in targets]
