"""Credentials never shown: ``user:password@`` in any URL becomes ``***@``. Pure.

Applied wherever a URL is displayed, logged or stored (the status page, /api/targets, the
bridge's own /metrics, log lines, ``--check-config``, the ``url`` tag in InfluxDB) and to
error messages that may quote one.
"""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/?#@\s]*@")


def redact(text: str) -> str:
    """``text`` with the user information of every URL in it replaced by ``***``."""
    return _USERINFO.sub(r"\1***@", text) if "@" in text else text


def has_userinfo(url: str) -> bool:
    """Whether ``url`` carries credentials (``user[:password]@host``)."""
    return bool(_USERINFO.match(url))
