"""Rendering /metrics: format negotiation, gzip and optional access control.

Pure functions over header values; the framework adapters do the I/O.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hmac
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from .fast_histogram import RenderingElsewhere


@dataclass(frozen=True)
class MetricsAuth:
    """Protection for /metrics: a bearer token, or basic auth user and password."""

    bearer_token: str | None = None
    username: str | None = None
    password: str | None = None

    def __post_init__(self) -> None:
        if self.bearer_token is None and (self.username is None or self.password is None):
            raise ValueError("MetricsAuth needs bearer_token, or both username and password")

    def allows(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header value grants access."""
        if not authorization:
            return False
        scheme, _, credentials = authorization.partition(" ")
        scheme = scheme.lower()
        credentials = credentials.strip()
        if self.bearer_token is not None and scheme == "bearer":
            return hmac.compare_digest(credentials.encode(), self.bearer_token.encode())
        if self.username is not None and scheme == "basic":
            try:
                decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return False
            user, sep, password = decoded.partition(":")
            expected_user = self.username.encode()
            expected_password = (self.password or "").encode()
            # Compare both parts even after a mismatch so timing says nothing.
            ok_user = hmac.compare_digest(user.encode(), expected_user)
            ok_password = hmac.compare_digest(password.encode(), expected_password)
            return bool(sep) and ok_user and ok_password
        return False

    def challenge(self) -> str:
        """The ``WWW-Authenticate`` header for a 401."""
        return 'Bearer realm="metrics"' if self.bearer_token is not None else (
            'Basic realm="metrics", charset="UTF-8"'
        )


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an ``Accept-Encoding`` header value allows gzip (RFC 9110: gzip named with
    a weight above 0, or not named and ``*`` above 0; ``q=0`` forbids)."""
    if not accept_encoding:
        return False
    weights: dict[str, float] = {}
    for part in accept_encoding.split(","):
        coding, *params = (p.strip() for p in part.split(";"))
        weight = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if coding:
            weights[coding.lower()] = weight
    for named in ("gzip", "x-gzip"):
        if named in weights:
            return weights[named] > 0
    return weights.get("*", 0.0) > 0


def render(
    registry: CollectorRegistry, accept: str | None, accept_encoding: str | None,
    fast: str | None = None,
) -> tuple[bytes, list[tuple[str, str]]]:
    """Body and headers for a /metrics response.

    Prometheus text 0.0.4 unless the client asks for OpenMetrics; ``text/plain`` keeps it
    readable in a browser rather than downloaded. ``fast``: a family's own text (the
    request histogram), written in place of what the registry would render for it.
    """
    encoder, content_type = choose_encoder(accept or "")
    if fast is None:
        body = encoder(registry)
    else:
        with RenderingElsewhere():
            body = encoder(registry)
        extra = fast.encode("utf-8")
        eof = b"# EOF\n"
        body = (body[:-len(eof)] + extra + eof if body.endswith(eof)  # OpenMetrics ends so
                else body + extra)
    headers = [("Content-Type", content_type), ("Vary", "Accept, Accept-Encoding")]
    if accepts_gzip(accept_encoding):
        body = gzip.compress(body, compresslevel=5)
        headers.append(("Content-Encoding", "gzip"))
    headers.append(("Content-Length", str(len(body))))
    return body, headers
