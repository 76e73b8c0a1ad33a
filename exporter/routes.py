"""Route templates for Starlette/FastAPI, read from what routing already did.

After routing, the ASGI scope holds the matched route object (``scope["route"]``; older
Starlette only sets ``scope["endpoint"]``). We map that object to its template once and
cache it by identity, so a request costs two dict lookups, never a re-match.

Mounted sub-applications add their concrete prefix to ``scope["root_path"]``; the part
added after our middleware saw the request is mapped back to the mount's template.
Recent FastAPI versions keep included routers un-copied, with the prefixed template in
``scope["fastapi"]["effective_route_context"]``; that is read when present.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from .compat.starlette import route_context
from .metrics import UNMATCHED, RouteInfo

_PARAM = re.compile(r"\{[^}]*\}")
_MAX_DYNAMIC_PREFIXES = 1024


def _route_children(route: Any) -> list[Any] | None:
    """The routes below a Mount (None for a leaf or a mounted non-router app)."""
    try:
        routes = getattr(route, "routes", None)
    except Exception:  # Mount.routes touches the mounted app
        return None
    return list(routes) if routes else None


def walk(routes: Any, prefix: str = "") -> Iterator[tuple[str, Any, frozenset[str] | None]]:
    """Yield (full template, route object, methods or None for WebSocket/mount) for a tree."""
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if callable(contexts):  # FastAPI's un-copied included router
            for ctx in contexts():
                methods = getattr(ctx, "methods", None)
                yield prefix + ctx.path_format, ctx.original_route, _methods(methods)
            continue
        path_format = getattr(route, "path_format", None)
        if path_format is None:
            continue
        if _is_mount(route):
            mount_path = getattr(route, "path", "")
            yield prefix + mount_path + "/{path}", route, None
            children = _route_children(route)
            if children:
                yield from walk(children, prefix + mount_path)
            continue
        yield prefix + path_format, route, _methods(getattr(route, "methods", None))


def _methods(methods: Any) -> frozenset[str] | None:
    return frozenset(methods) if methods else None


def _is_mount(route: Any) -> bool:
    # Starlette's Mount (or a look-alike): it has an app but no endpoint.
    return hasattr(route, "app") and not hasattr(route, "endpoint")


def _template_regex(template: str) -> re.Pattern[str]:
    parts = _PARAM.split(template)
    return re.compile("[^/]+".join(re.escape(p) for p in parts))


class RouteResolver:
    """Maps the routed ASGI scope to the route template of one Starlette application."""

    def __init__(self, app: Any) -> None:
        self._app = app
        # id(route or endpoint) -> (object kept alive so the id stays valid, template, is_mount)
        self._known: dict[int, tuple[Any, str, bool]] = {}
        self._mounts: list[tuple[re.Pattern[str], str]] = []
        self._static_mounts: set[str] = set()
        self._dynamic_prefixes: dict[str, str] = {}
        self._ambiguous: set[int] = set()  # ids found at more than one place in the tree
        self._routes_of_endpoint: dict[int, list[Any]] = {}
        self._learned = False

    def routes(self) -> list[RouteInfo]:
        """Every route of the app, for zero-count series."""
        out = []
        for template, route, methods in walk(self._app.routes):
            if methods is None:
                if type(route).__name__.endswith("WebSocketRoute"):
                    out.append(RouteInfo(template, frozenset(), websocket=True))
                continue
            status = getattr(route, "status_code", None) or 200
            out.append(RouteInfo(template, methods, status=status))
        return out

    def cacheable(self, obj: Any) -> bool:
        """Whether ``obj`` always resolves to the same template (it is in one place only)."""
        return self._learned and id(obj) not in self._ambiguous

    def _learn(self) -> None:
        self._learned = True
        seen: set[int] = set()
        for template, route, methods in walk(self._app.routes):
            for obj in (route, getattr(route, "endpoint", None)):
                if obj is not None:
                    if id(obj) in seen:
                        self._ambiguous.add(id(obj))
                    seen.add(id(obj))
                    if obj is not route:
                        self._routes_of_endpoint.setdefault(id(obj), []).append(route)
            if methods is None and _is_mount(route):
                mount = template[: -len("/{path}")]
                if "{" in mount:
                    self._mounts.append((_template_regex(mount), mount))
                else:
                    self._static_mounts.add(mount)
                # The mount's own path is in root_path already; only the tail is left.
                self._known.setdefault(id(route), (route, "/{path}", True))
                inner = getattr(route, "app", None)
                if inner is not None:
                    self._known.setdefault(id(inner), (inner, "/{path}", True))
                continue
            # Relative templates: the mount prefix comes from root_path at request time.
            relative = getattr(route, "path_format", None) or template
            entry = (route, relative, False)
            self._known.setdefault(id(route), entry)
            endpoint = getattr(route, "endpoint", None)
            if endpoint is not None:
                self._known.setdefault(id(endpoint), (endpoint, relative, False))

    def _lookup(self, obj: Any) -> tuple[Any, str, bool]:
        entry = self._known.get(id(obj))
        if entry is not None and entry[0] is obj:
            return entry
        if not self._learned:
            self._learn()
            entry = self._known.get(id(obj))
            if entry is not None and entry[0] is obj:
                return entry
        # A route added after start-up, or an object we cannot see: use its own path.
        path_format = getattr(obj, "path_format", None)
        entry = (obj, path_format if isinstance(path_format, str) else UNMATCHED, False)
        self._known[id(obj)] = entry
        return entry

    def _mount_prefix(self, concrete: str) -> str:
        if concrete in self._static_mounts:
            return concrete
        cached = self._dynamic_prefixes.get(concrete)
        if cached is not None:
            return cached
        if not self._learned:
            self._learn()
            if concrete in self._static_mounts:
                return concrete
        found = concrete
        for regex, template in self._mounts:
            if regex.fullmatch(concrete):
                found = template
                break
        else:
            # Unknown prefix (a mount inside a mounted app we could not walk): keep the
            # label bounded rather than exact.
            found = "/{mount}"
        if len(self._dynamic_prefixes) < _MAX_DYNAMIC_PREFIXES:
            self._dynamic_prefixes[concrete] = found
        return found

    def _by_path(self, scope: dict[str, Any], endpoint: Any, default: str) -> str:
        """Older Starlette names only the endpoint; one used by several routes is told
        apart by which of those routes matches the path (never a full re-match)."""
        path = scope.get("path", "")
        root_path = scope.get("root_path", "")
        tails = (path, path[len(root_path):]) if path.startswith(root_path) else (path,)
        for route in self._routes_of_endpoint.get(id(endpoint), ()):
            regex = getattr(route, "path_regex", None)
            if regex is not None and any(regex.match(tail) for tail in tails):
                return str(route.path_format)
        return default

    def resolve(self, scope: dict[str, Any], entry_root_path: str, status: int) -> str:
        """The template of the route that handled ``scope`` (UNMATCHED when none did)."""
        route = scope.get("route")
        obj = route if route is not None else scope.get("endpoint")
        if obj is None:
            return UNMATCHED
        _, template, is_mount = self._lookup(obj)
        if route is None and id(obj) in self._ambiguous:
            template = self._by_path(scope, obj, template)
        if is_mount and status == 404:
            return UNMATCHED
        ctx = route_context(scope)
        if ctx is not None and getattr(ctx, "original_route", None) is route:
            template = getattr(ctx, "path_format", template)
        root_path = scope.get("root_path", "")
        if len(root_path) > len(entry_root_path):
            return self._mount_prefix(root_path[len(entry_root_path):]) + template
        return template
