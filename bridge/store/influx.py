"""A thin InfluxDB 1.x HTTP client: /write, /query and the idempotent schema set-up.

(influxdb-client speaks only the v2 API, which InfluxDB 1.6/1.7 lack.)
"""

from __future__ import annotations

import base64
import json
import logging
import re
import socket
import ssl
from dataclasses import dataclass
from typing import Any

import aiohttp

from ..bodies import TooLarge, read_bounded
from ..redact import redact
from . import rollups

ANSWER_BYTES = 1024**2  # of a write's answer (an error lists the points it refused)
QUERY_ANSWER_BYTES = 512 * 1024**2  # of a query's

log = logging.getLogger("promflux.bridge.influx")


class InfluxError(Exception):
    """A failed request.

    ``retryable``: the same request may work later (network trouble, 5xx, or a 401, 403 or
    404 that is the server's set-up, not the batch's fault). ``batch_error``: InfluxDB (or
    what answered for it) refused this body itself: a parse error, too large a body, or a
    response that cannot even be read (it echoed a bad line in a header); re-sending the
    same body would fail the same way, so the writer splits it to isolate the bad lines.
    """

    def __init__(self, message: str, retryable: bool, status: int | None = None,
                 batch_error: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.batch_error = batch_error


@dataclass
class WriteResult:
    """A write InfluxDB answered; a partial write (400) names what it dropped."""

    dropped_message: str = ""
    dropped_points: int = 0

    @property
    def partial(self) -> bool:
        return bool(self.dropped_message)


def dropped_points(message: str) -> int:
    """Points a partial-write message says were not stored: ``dropped=N`` (type conflicts,
    points beyond retention) plus one per ``unable to parse`` line."""
    return (sum(int(n) for n in re.findall(r"dropped=(\d+)", message))
            + message.count("unable to parse"))


class InfluxClient:
    """One database on one InfluxDB 1.x server."""

    def __init__(self, url: str, database: str, *, username: str | None = None,
                 password: str | None = None, timeout: float = 10.0,
                 ssl_context: ssl.SSLContext | bool | None = None,
                 consistency: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.database = database
        self.consistency = consistency  # InfluxDB Enterprise: any, one, quorum or all
        self._headers = {}
        if username is not None:
            token = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._ssl: ssl.SSLContext | bool = True if ssl_context is None else ssl_context
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:  # never shows credentials
        return f"InfluxClient({redact(self.url)!r}, {self.database!r})"

    async def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout, headers=self._headers)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def write(self, body: bytes, rp: str | None = None) -> WriteResult:
        """POST a line-protocol body (ms precision). Raises InfluxError."""
        params = {"db": self.database, "precision": "ms"}
        if rp:
            params["rp"] = rp
        if self.consistency:
            params["consistency"] = self.consistency
        session = await self._http()
        try:
            async with session.post(self.url + "/write", params=params, data=body,
                                    ssl=self._ssl) as response:
                status = response.status
                text = (await read_bounded(response, ANSWER_BYTES)).decode("utf-8", "replace")
        except TooLarge as exc:
            raise InfluxError(f"answer to a write: {exc}", retryable=True) from None
        except aiohttp.ClientResponseError as exc:  # an answer that cannot be parsed
            raise InfluxError(f"unreadable answer to a write: {exc.message}"[:500],
                              retryable=False, batch_error=True) from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise InfluxError(unreachable(exc, self.url, self._timeout.total),
                              retryable=True) from None
        if status == 204:
            return WriteResult()
        message = _error_text(text)[:2000]
        if status == 400 and "partial write" in message:  # the valid points were stored
            return WriteResult(message, dropped_points(message))
        server_side = status >= 500 or status in (401, 403, 404)
        if status in (401, 403):
            message = ("InfluxDB refused the credentials: check influxdb.username and "
                       f"influxdb.password ({message})")
        elif status == 404:
            message = (f"{message} (the bridge creates it at start-up unless "
                       "influxdb.manage_schema is false)")
        raise InfluxError(f"write failed with {status}: {message}", retryable=server_side,
                          status=status, batch_error=not server_side)

    async def query(self, q: str, db: str | None = None,
                    epoch: str | None = None) -> list[dict[str, Any]]:
        """Run InfluxQL statements; returns the per-statement results. Raises InfluxError.

        ``epoch`` ("ms", "s") returns times as numbers instead of RFC 3339 text."""
        params = {"q": q}
        if db:
            params["db"] = db
        if epoch:
            params["epoch"] = epoch
        session = await self._http()
        try:
            async with session.post(self.url + "/query", params=params,
                                    ssl=self._ssl) as response:
                status = response.status
                kind = response.headers.get("Content-Type", "no Content-Type")
                body = await read_bounded(response, QUERY_ANSWER_BYTES)
        except TooLarge as exc:
            raise InfluxError(f"answer to a query: {exc}", retryable=False) from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise InfluxError(unreachable(exc, self.url, self._timeout.total),
                              retryable=True) from None
        try:
            payload = json.loads(body)
            if not isinstance(payload, dict):
                raise ValueError("not an object")
        except ValueError:
            raise InfluxError(redact(
                f"{self.url} answered HTTP {status} ({kind}) but not with InfluxDB's JSON: "
                "is influxdb.url an InfluxDB 1.x HTTP API (usually port 8086)?"),
                retryable=True, status=status) from None
        if status in (401, 403):
            raise InfluxError(f"InfluxDB refused the credentials (HTTP {status}): check "
                              "influxdb.username and influxdb.password, and that the user "
                              "is an admin", retryable=True, status=status)
        if status != 200:
            raise InfluxError(f"query failed with {status}: {payload}",
                              retryable=status >= 500, status=status)
        results: list[dict[str, Any]] = payload.get("results", [])
        for result in results:
            if "error" in result:
                raise InfluxError(f"query error: {result['error']}", retryable=False)
        return results

    async def setup(self, raw: float, hourly: float, daily: float,
                    continuous_queries: bool = True, replication: int = 1) -> list[str]:
        """Create the database, retention policies and continuous queries if missing.

        Idempotent and never touches data: a policy with another duration or replication
        is altered, a CQ with another definition is dropped and created again, and one of
        ours that is no longer wanted (all of them with ``continuous_queries`` off) is
        dropped. Returns what it did.
        """
        done = []
        db = rollups.quote(self.database)
        existed = any([self.database] in series.get("values", [])
                      for result in await self.query("SHOW DATABASES")
                      for series in result.get("series", []))
        await self.query(f"CREATE DATABASE {db}")
        existing = {}
        for result in await self.query(f"SHOW RETENTION POLICIES ON {db}"):
            for series in result.get("series", []):
                columns = series["columns"]
                for row in series["values"]:
                    item = dict(zip(columns, row, strict=False))
                    existing[item["name"]] = item
        before = next((n for n, item in existing.items() if item.get("default")), None)
        if existed and before not in (None, rollups.RAW):
            done.append(
                f"warning: the database {self.database} existed with the default retention "
                f"policy {before}; {rollups.RAW} is made its default (the bridge's queries "
                f"and dashboards read the default policy), so points other writers send "
                f"without a retention policy now go to {rollups.RAW} and are kept "
                f"{raw / 86400:g} days. Their older points stay in {before}.")
        for name, seconds, default in rollups.policies(raw, hourly, daily):
            current = existing.get(name)
            if current is None:
                await self.query(rollups.create_policy(self.database, name, seconds, default,
                                                       replication))
                done.append(f"created retention policy {name}")
            elif _seconds(current["duration"]) != int(seconds) or bool(
                    current.get("default")) != default or int(
                    current.get("replicaN") or 1) != replication:
                await self.query(rollups.alter_policy(self.database, name, seconds, default,
                                                      replication))
                done.append(f"altered retention policy {name}")
        current_cqs = {}
        for result in await self.query("SHOW CONTINUOUS QUERIES"):
            for series in result.get("series", []):
                if series.get("name") == self.database:
                    for name, query in series.get("values", []):
                        current_cqs[name] = query
        wanted = rollups.continuous_queries(self.database) if continuous_queries else {}
        for name in sorted(set(current_cqs) - set(wanted)):
            if name.startswith("promflux_"):  # one of ours no longer made by a CQ
                await self.query(f"DROP CONTINUOUS QUERY {rollups.quote(name)} ON {db}")
                done.append(f"dropped continuous query {name}")
        for name, statement in wanted.items():
            have = current_cqs.get(name)
            if have is not None and _same_cq(have, statement):
                continue
            if have is not None:
                await self.query(f"DROP CONTINUOUS QUERY {rollups.quote(name)} ON {db}")
            await self.query(statement)
            done.append(f"{'re' if have else ''}created continuous query {name}")
        return done


def _error_text(text: str) -> str:
    import json

    try:
        return str(json.loads(text).get("error", text)).strip()
    except ValueError:
        return text.strip()


def _seconds(duration: str) -> int:
    """InfluxDB's "168h0m0s" as seconds."""
    total, number = 0, ""
    for c in duration:
        if c.isdigit():
            number += c
        else:
            total += int(number or 0) * {"h": 3600, "m": 60, "s": 1}.get(c, 0)
            number = ""
    return total


def _normalize_cq(text: str) -> str:
    return "".join(text.split()).lower().replace('"', "")


def _same_cq(have: str, statement: str) -> bool:
    # InfluxDB echoes the statement back re-formatted; compare without blanks and quotes.
    return _normalize_cq(have) == _normalize_cq(statement)


def unreachable(exc: BaseException, url: str, timeout: float | None) -> str:
    """One line on why InfluxDB could not be reached, and what to check."""
    where = redact(url)
    if isinstance(exc, TimeoutError):
        return f"InfluxDB at {where} did not answer within {timeout or 0:g} s"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return (f"the TLS certificate of {where} is not trusted "
                f"({exc.certificate_error}): set influxdb.tls.ca_file")
    if isinstance(exc, aiohttp.ClientConnectorError):
        cause = exc.os_error
        if isinstance(cause, ConnectionRefusedError):
            return (f"cannot connect to InfluxDB at {where}: connection refused (is influxd "
                    "running and listening there?)")
        if isinstance(cause, socket.gaierror):
            return f"cannot connect to InfluxDB at {where}: unknown host"
        return f"cannot connect to InfluxDB at {where}: {cause.strerror or cause}"
    text = str(exc) or type(exc).__name__
    return f"InfluxDB at {where} unreachable: {text.splitlines()[0][:200]}"
