"""Label values both sides agree on: the unmatched route and the HTTP method set. Pure."""

from __future__ import annotations

# Route label of requests that matched no route: 404 scanners collapse into it.
UNMATCHED = "<unmatched>"
# Method label of requests whose method is outside the standard set.
OTHER_METHOD = "OTHER"
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)


def normalize_method(method: str) -> str:
    """The method label: the method itself when standard, else ``OTHER`` (bounded)."""
    return method if method in KNOWN_METHODS else OTHER_METHOD
