"""Starlette's and FastAPI's internals the exporter hooks into, each checked before use.

- ``Starlette.build_middleware_stack``: wrapped (on the instance) so the exporter's
  middleware is the outermost layer of the stack Starlette builds on its first call.
- ``ServerErrorMiddleware``'s ``app``, ``handler``, ``debug``, ``debug_response`` and
  ``error_response``: the outermost layer Starlette always adds already wraps ``send``;
  the exporter's middleware stands in for it and does its job, so a request pays for one
  ``send`` wrapper, not two.
- FastAPI's ``scope["fastapi"]["effective_route_context"]``: the route of an included
  router that FastAPI no longer copies per prefix; read when present, as a plain dict
  read that cannot fail.

Without the first two: ``app.add_middleware`` (the public path; inside Starlette's error
layer), or the stack wrapped whole.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from . import usable

BUILD_STACK, ERROR_MIDDLEWARE = "starlette.build_stack", "starlette.error_middleware"
_ERROR_PARTS = ("app", "handler", "debug", "debug_response", "error_response")


def stack_builder(app: Any) -> Callable[[], Any] | None:
    """The application's ``build_middleware_stack``, when it can be wrapped."""
    build = getattr(app, "build_middleware_stack", None)
    try:
        fits = callable(build) and not inspect.signature(build).parameters
    except (TypeError, ValueError):
        fits = False
    return build if usable(BUILD_STACK, fits) else None


def error_middleware(stack: Any) -> Any | None:
    """``stack`` when it is Starlette's ServerErrorMiddleware with the parts the exporter's
    middleware needs to stand in for it, else None."""
    try:
        from starlette.middleware.errors import ServerErrorMiddleware
    except ImportError:
        return None
    if type(stack) is not ServerErrorMiddleware:
        return None  # (an application that builds its own stack: nothing to stand in for)
    fits = (all(hasattr(stack, part) for part in _ERROR_PARTS)
            and callable(stack.debug_response) and callable(stack.error_response))
    return stack if usable(ERROR_MIDDLEWARE, fits) else None


def route_context(scope: dict[str, Any]) -> Any:
    """FastAPI's route context of this request, when it set one (a plain read: any other
    shape is None, and the route object keys the cache as for Starlette)."""
    extra = scope.get("fastapi")
    return extra.get("effective_route_context") if isinstance(extra, dict) else None
