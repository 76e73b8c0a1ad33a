"""Credentials never shown: ``user:password@`` in any URL becomes ``***@``, and the value
of a query parameter whose name says it is a secret (``token``, ``key``, ``secret``,
``password``, ``auth``, ``signature``, ``credential``, ``session`` within the name, in any
case) becomes ``***``. Pure.

Applied wherever a URL is displayed, logged or stored (the status page, /api/targets, the
bridge's own /metrics, log lines, ``--check-config``, the ``url`` tag in InfluxDB) and to
error messages that may quote one.
"""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/?#@\s]*@")
_SECRET_PARAMETER = re.compile(
    r"(?i)([?&;][^=&#;\s]*(?:token|key|secret|pass|auth|sig|credential|session)"
    r"[^=&#;\s]*=)[^&#;\s'\"]*")


def redact(text: str) -> str:
    """``text`` with the user information of every URL in it, and the values of its secret
    query parameters, replaced by ``***``."""
    if "@" in text:
        text = _USERINFO.sub(r"\1***@", text)
    if "=" in text:
        text = _SECRET_PARAMETER.sub(r"\1***", text)
    return text


def has_userinfo(url: str) -> bool:
    """Whether ``url`` carries credentials (``user[:password]@host``)."""
    return bool(_USERINFO.match(url))
