"""The bridge's configuration: YAML, validated by pydantic, InfluxDB settings overridable
from the environment. Errors name the key and the problem (``ConfigError``)."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .analyze.schema import FIELD_NAMES, PRESETS
from .analyze.thresholds import DEFAULTS
from .redact import has_userinfo

log = logging.getLogger("promflux.bridge.config")
ENV_PREFIX = "PROMFLUX_INFLUXDB_"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_SIZE = re.compile(r"^\s*(\d+)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$", re.I)
_SIZES = {None: 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3,
          "kib": 1024, "mib": 1024**2, "gib": 1024**3}


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        log.warning("%s", message)


class ConfigError(Exception):
    """An invalid configuration: the message names the key and the problem."""


def _duration(value: Any) -> Any:
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"not a duration (like 15s, 500ms, 2m, 1h): {value!r}")
        return float(match.group(1)) * _UNITS[match.group(2)]
    return value


def _size(value: Any) -> Any:
    if isinstance(value, str):
        match = _SIZE.match(value)
        if not match:
            raise ValueError(f"not a size (like 10MB, 512MiB): {value!r}")
        return int(match.group(1)) * _SIZES[(match.group(2) or "b").lower()]
    return value


def _http_url(value: str) -> str:
    if not re.fullmatch(r"https?://[^/\s]+\S*", value):
        raise ValueError(f"must be an http:// or https:// URL: {value!r}")
    return value


# Tags the schema itself writes: a target label of the same name would be ambiguous.
RESERVED_TAGS = frozenset({
    "service", "endpoint", "method", "status", "le", "url", "pid", "path", "queue", "kind",
    "exception", "job", "code", "metric", "route"})


def label_problem(name: str) -> str:
    """Why ``name`` cannot be a target label stored as a tag ("" if it can)."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or name.startswith("__"):
        return f"label {name!r}: must be a Prometheus label name not starting with __"
    if name in RESERVED_TAGS:
        return f"label {name!r} is a tag the bridge writes itself"
    if name == "time":
        return "label 'time' is InfluxDB's timestamp: a tag of that name is dropped"
    if name in FIELD_NAMES:
        return f"label {name!r} is a field the bridge writes: queries could not select it"
    return ""


def _preset(value: str) -> str:
    if value not in PRESETS:
        raise ValueError(f"unknown preset {value!r}; known: {', '.join(sorted(PRESETS))}")
    return value


Seconds = Annotated[float, BeforeValidator(_duration), Field(gt=0)]
Bytes = Annotated[int, BeforeValidator(_size), Field(gt=0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Secret(_Model):
    """A secret given inline, by environment variable or by file (never logged)."""

    value: str | None = Field(default=None, repr=False)
    env: str | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Secret:
        if sum(x is not None for x in (self.value, self.env, self.file)) != 1:
            raise ValueError("give exactly one of value, env, file")
        return self

    def resolve(self) -> str:
        """The secret's text (read from the environment or the file now)."""
        if self.value is not None:
            return self.value
        if self.env is not None:
            if self.env not in os.environ:
                raise ConfigError(f"environment variable {self.env} is not set")
            return os.environ[self.env]
        assert self.file is not None
        try:
            if self.file.stat().st_mode & 0o004:
                _warn_once(f"secret file {self.file} is readable by every user "
                           f"(chmod o-r {self.file})")
            return self.file.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read secret file {self.file}: {exc.strerror}") from None

    def __repr__(self) -> str:
        return "Secret(***)"


class BasicAuth(_Model):
    username: str
    password: Secret


class TLS(_Model):
    ca_file: Path | None = None
    verify: bool = True


class InfluxConfig(_Model):
    url: str = "http://127.0.0.1:8086"
    database: str = "performance"
    username: str | None = None
    password: Secret | None = None
    timeout: Seconds = 10.0
    batch_size: int = Field(default=10_000, gt=0, le=100_000)
    # How long a point may wait for others to share its write (0: each scrape's own).
    flush_interval: Annotated[float, BeforeValidator(_duration), Field(ge=0, le=60)] = 0.5
    tls: TLS = TLS()
    # False: no continuous queries; the bridge's roll-up job writes every hourly and daily
    # row (for servers that run none: Enterprise clusters with CQs off, 2.x, Cloud).
    continuous_queries: bool = True
    # False: the database and retention policies exist already (2.x/Cloud DBRP mappings).
    manage_schema: bool = True
    consistency: Literal["any", "one", "quorum", "all"] | None = None  # Enterprise writes
    replication: int = Field(default=1, ge=1, le=100)  # of the retention policies made
    # Writes failing (InfluxDB down, or refusing them) this long make /healthz "degraded".
    unhealthy_after: Seconds = 60.0

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _http_url(value).rstrip("/")

    @field_validator("database")
    @classmethod
    def _database(cls, value: str) -> str:
        # What InfluxDB 1.x refuses in a database name (its rule: printable characters as
        # Go's unicode.IsPrint has them, which is Python's isprintable, no \\ or /, not
        # "." or ".."), and double quotes, which the bridge's quoting cannot carry.
        if (not value or len(value) > 255 or value in (".", "..")
                or not value.isprintable() or re.search(r'[\\/"]', value)):
            raise ValueError("must be 1-255 printable characters (no other blank than the "
                             "space, no invisible ones), without \\, / or double quotes, "
                             f"and not . or ..: {value!r}")
        return value

    @model_validator(mode="after")
    def _one_credential(self) -> InfluxConfig:
        if has_userinfo(self.url) and self.username is not None:
            raise ValueError("give credentials in the url or as username/password, not both")
        return self


class ScrapeConfig(_Model):
    interval: Seconds = 15.0
    timeout: Seconds = 5.0
    max_body_bytes: Bytes = 10 * 1000**2
    max_samples: int = Field(default=200_000, gt=0)


class Target(_Model):
    service: str = Field(min_length=1)
    url: str
    preset: str = "promflux"
    active: bool = False  # the throughput threshold applies
    interval: Seconds | None = None
    timeout: Seconds | None = None
    basic_auth: BasicAuth | None = None
    bearer_token: Secret | None = None
    tls: TLS = TLS()
    labels: dict[str, str] = {}  # extra tags on every point of the target (e.g. instance)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _http_url(value)

    @field_validator("labels")
    @classmethod
    def _tag_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            problem = label_problem(name)
            if problem:
                raise ValueError(problem)
        return value

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, value: str) -> str:
        return _preset(value)

    @model_validator(mode="after")
    def _one_auth(self) -> Target:
        given = [self.basic_auth is not None, self.bearer_token is not None,
                 has_userinfo(self.url)]
        if sum(given) > 1:
            raise ValueError("give one of basic_auth, bearer_token or credentials in the url")
        return self


Duration = Annotated[float, BeforeValidator(_duration), Field(ge=0)]


class Limit(_Model):
    """One threshold: warning and critical levels; how long a breach must last (``for``),
    the window it is judged over, how long a better level must last (``resolve``)."""

    warning: float
    critical: float
    for_: Duration | None = Field(default=None, alias="for")
    window: Seconds | None = None
    resolve: Duration | None = None
    min_requests: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> Limit:
        if self.warning != self.warning or self.critical != self.critical:
            raise ValueError("warning and critical must be numbers")
        return self


class PartialLimit(_Model):
    """An override: only the fields given replace the limit that applies."""

    warning: float | None = None
    critical: float | None = None
    for_: Duration | None = Field(default=None, alias="for")
    window: Seconds | None = None
    resolve: Duration | None = None
    min_requests: int | None = Field(default=None, ge=1)
    ratio: float | None = Field(default=None, gt=1)
    alpha: float | None = Field(default=None, gt=0, lt=1)


def _limit(metric: str) -> Limit:
    default = DEFAULTS[metric]
    return Limit(warning=default.warning, critical=default.critical)


Switch = PartialLimit | Literal[False] | None  # False (YAML off/false): not judged here


class Override(_Model):
    """Limits for the services and endpoints the patterns match (shell wildcards)."""

    service: str = "*"
    endpoint: str = "*"
    p95_ms: Switch = None
    error_rate_percent: Switch = None
    client_error_rate_percent: Switch = None
    cpu_percent: Switch = None
    memory_percent: Switch = None
    disk_percent: Switch = None
    requests_per_minute: Switch = None
    p95_regression: Switch = None
    error_rate_regression: Switch = None
    job_failure_percent: Switch = None
    job_stale_seconds: Switch = None


class Regression(_Model):
    """Relative regressions against each endpoint's baseline (docs/alerts.md)."""

    enabled: bool = True
    ratio: float = Field(default=1.5, gt=1)  # p95 and error rate at least this x baseline
    min_error_increase: float = Field(default=1.0, ge=0)  # percentage points
    alpha: float = Field(default=0.001, gt=0, lt=1)
    min_baseline_requests: int = Field(default=100, ge=1)
    min_requests: int = Field(default=20, ge=1)  # in the window
    window: Seconds | None = None
    for_: Duration | None = Field(default=None, alias="for")
    resolve: Duration | None = None
    refresh: Seconds = 300.0  # how often baselines are fetched


class Thresholds(_Model):
    """Defaults from the seed: p95 < 500 ms, errors < 5 %, CPU < 80 %, memory < 80 %,
    disk < 90 %, and >= 10 requests/min for services marked ``active``. ``window``,
    ``for``, ``resolve`` and ``min_requests`` here apply to every figure that does not
    set its own."""

    p95_ms: Limit = _limit("p95_ms")
    error_rate_percent: Limit = _limit("error_rate_percent")
    cpu_percent: Limit = _limit("cpu_percent")
    memory_percent: Limit = _limit("memory_percent")
    disk_percent: Limit = _limit("disk_percent")
    requests_per_minute: Limit = _limit("requests_per_minute")
    # 4xx answers (the client's fault, or a missing route): off unless given.
    client_error_rate_percent: Limit | None = None
    job_failure_percent: Limit = _limit("job_failure_percent")  # per job kind ("job:name")
    # No success for this many seconds (since the job was first seen if never): off unless
    # given, as only the job's owner knows how often it runs (per job, with overrides).
    job_stale_seconds: Limit | None = None
    window: Seconds | None = None
    for_: Duration | None = Field(default=None, alias="for")
    resolve: Duration | None = None
    min_requests: int | None = Field(default=None, ge=1)  # per window, ratio figures
    alpha: float | None = Field(default=None, gt=0, le=1)  # 1: no significance test
    # A target that cannot be scraped is critical ("up" = 0) once it has failed this long.
    down_for: Duration = 0.0
    regression: Regression = Regression()
    overrides: list[Override] = []

    @model_validator(mode="after")
    def _directions(self) -> Thresholds:
        for name in ("client_error_rate_percent", "job_stale_seconds"):
            optional = getattr(self, name)
            if optional is not None and optional.critical < optional.warning:
                raise ValueError(f"{name}: critical must not be below warning")
        for name, default in DEFAULTS.items():
            limit = getattr(self, name)
            if default.above and limit.critical < limit.warning:
                raise ValueError(f"{name}: critical must not be below warning")
            if not default.above and limit.critical > limit.warning:
                raise ValueError(f"{name}: critical must not be above warning "
                                 "(a low value is the problem)")
        return self


class Alertmanager(_Model):
    """A Prometheus Alertmanager: alerts go to its v2 API, re-sent while active."""

    url: str
    timeout: Seconds = 5.0
    resend_interval: Seconds = 60.0
    bearer_token: Secret | None = None
    tls: TLS = TLS()

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _http_url(value).rstrip("/")


class Webhook(_Model):
    url: str
    timeout: Seconds = 5.0
    retries: int = Field(default=5, ge=0, le=20)
    bearer_token: Secret | None = None
    tls: TLS = TLS()

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _http_url(value)

    @model_validator(mode="after")
    def _one_auth(self) -> Webhook:
        if self.bearer_token is not None and has_userinfo(self.url):
            raise ValueError("give bearer_token or credentials in the url, not both")
        return self


def state_directory(environ: Mapping[str, str] | None = None, uid: int | None = None) -> Path:
    """Where the bridge keeps its state (the buffer, saved counters) unless told: systemd's
    ``$STATE_DIRECTORY``, ``/var/lib/promflux`` for root, else ``$XDG_STATE_HOME/promflux``
    (``~/.local/state/promflux``). Never the folder it happens to start in."""
    environ = os.environ if environ is None else environ
    if environ.get("STATE_DIRECTORY"):
        return Path(environ["STATE_DIRECTORY"].split(":")[0])
    if (os.geteuid() if uid is None else uid) == 0:
        return Path("/var/lib/promflux")
    base = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "promflux"


class BufferConfig(_Model):
    path: Path = Field(default_factory=lambda: state_directory() / "buffer")
    max_bytes: Bytes = 512 * 1024**2

    @field_validator("path", mode="before")
    @classmethod
    def _default_when_empty(cls, value: Any) -> Any:
        # (an empty value, as ``${BUFFER_PATH:-}`` gives, means the default)
        return state_directory() / "buffer" if value in (None, "") else value


class DiscoveryDefaults(_Model):
    """Settings for every target a discovery source finds."""

    preset: str = "promflux"
    active: bool = False
    interval: Seconds | None = None
    timeout: Seconds | None = None

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, value: str) -> str:
        return _preset(value)


class FileSD(DiscoveryDefaults):
    """Prometheus's file_sd format: JSON or YAML lists of {targets, labels}."""

    files: list[str] = Field(min_length=1)  # glob patterns
    refresh_interval: Seconds = 5.0  # how often the files are checked for changes


class HttpSD(DiscoveryDefaults):
    """Prometheus's HTTP SD format, polled."""

    url: str
    refresh_interval: Seconds = 60.0
    bearer_token: Secret | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _http_url(value)


class Shard(_Model):
    """This replica scrapes the targets whose URL hashes to ``index`` (mod ``count``)."""

    count: int = Field(default=1, ge=1)
    index: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _in_range(self) -> Shard:
        if self.index >= self.count:
            raise ValueError(f"index must be below count ({self.count})")
        return self


class HighAvailability(_Model):
    """One of two replicas scraping the same targets: points land on the slots of the
    interval; the primary writes them and the standby only what the primary did not
    store, and webhooks go out from one replica only."""

    peer: str  # the other replica's base URL (its /api/coverage)
    primary: bool  # the primary writes and sends webhooks; the standby while it is down
    tls: TLS = TLS()  # for an https peer

    @field_validator("peer")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _http_url(value).rstrip("/")


class Retention(_Model):
    raw: Seconds = 7 * 86400.0
    hourly: Seconds = 30 * 86400.0
    daily: Seconds = 90 * 86400.0


class BridgeConfig(_Model):
    influxdb: InfluxConfig = InfluxConfig()
    scrape: ScrapeConfig = ScrapeConfig()
    targets: list[Target] = []
    file_sd_configs: list[FileSD] = []
    http_sd_configs: list[HttpSD] = []
    shard: Shard = Shard()
    ha: HighAvailability | None = None
    buffer: BufferConfig = BufferConfig()
    retention: Retention = Retention()
    thresholds: Thresholds = Thresholds()
    webhooks: list[Webhook] = []
    alertmanagers: list[Alertmanager] = []
    listen: str = "127.0.0.1:9108"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @model_validator(mode="after")
    def _unique_services(self) -> BridgeConfig:
        if not (self.targets or self.file_sd_configs or self.http_sd_configs):
            raise ValueError("give targets, file_sd_configs or http_sd_configs")
        seen: set[tuple[str, str]] = set()
        for target in self.targets:
            key = (target.service, target.url)
            if key in seen:
                raise ValueError(f"target {target.service} {target.url} is listed twice")
            seen.add(key)
        if self.scrape.timeout > self.scrape.interval:
            raise ValueError("scrape.timeout must not exceed scrape.interval")
        return self

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"must be host:port, like 127.0.0.1:9108: {value!r}")
        return value


def _location(error: Mapping[str, Any]) -> str:
    parts = [str(p) for p in error.get("loc", ())]
    return ".".join(parts) or "(top level)"


_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand(value: Any, environ: dict[str, str], where: str = "") -> Any:
    """``${NAME}`` and ``${NAME:-default}`` in string values, from the environment (so one
    file serves compose and a local run). Applied to parsed values, never to the YAML text,
    so a variable cannot add settings."""
    if isinstance(value, dict):
        return {k: expand(v, environ, f"{where}.{k}" if where else str(k))
                for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v, environ, f"{where}.{i}") for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        # As in the shell: ${NAME} is NAME's value, even empty; ${NAME:-default} is the
        # default when NAME is unset or empty.
        name, default = match.group(1), match.group(2)
        if name in environ and (environ[name] or default is None):
            return environ[name]
        if default is None:
            raise ConfigError(f"{where}: environment variable {name} is not set "
                              f"(write ${{{name}:-default}} for a default)")
        return default

    return _VARIABLE.sub(substitute, value)


MAX_VALUES = 100_000  # a real configuration has a few hundred
MAX_BYTES = 4 * 1024**2  # a real one has a few kilobytes; targets in bulk go in file_sd
MAX_DEPTH = 64  # of nested mappings and lists; a real one has about 6


class _Endless(ValueError):
    """A YAML alias inside the node it names: a value without end."""


def flow_depth(text: str) -> int:
    """The deepest nesting of ``[``/``{`` in ``text`` outside quotes (checked before the
    YAML parser, which recurses once per level). Pure."""
    depth = deepest = 0
    quote = ""
    for char in text:
        if quote:
            # (an apostrophe in a plain value or a comment ends with its line)
            if char == quote or (char == "\n" and not depth):
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(0, depth - 1)
    return deepest


def expanded_size(data: Any, limit: int) -> int:
    """How many values ``data`` holds once YAML aliases are expanded (a small file can
    stand for billions: each alias repeats all it points to). Counted once per distinct
    node, so the count itself takes linear time; stops early past ``limit``."""
    sizes: dict[int, int] = {}

    def size(node: Any) -> int:
        if not isinstance(node, dict | list):
            return 1
        known = sizes.get(id(node))
        if known == -1:
            raise _Endless("a YAML alias inside the value it names (an endless value)")
        if known is None:
            sizes[id(node)] = -1  # in progress: meeting it again is a cycle
            children = node.values() if isinstance(node, dict) else node
            known = 1
            for child in children:
                known += size(child)
                if known > limit:
                    break
            sizes[id(node)] = known
        return known

    return size(data)


def load(path: str | Path, environ: dict[str, str] | None = None) -> BridgeConfig:
    """Read, expand ``${VAR}``, apply environment overrides and validate; raises ConfigError."""
    environ = dict(os.environ if environ is None else environ)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    if len(raw) > MAX_BYTES:
        raise ConfigError(f"{path}: over {MAX_BYTES // 1024**2} MiB, too large for a "
                          "configuration (many targets belong in file_sd_configs)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    if flow_depth(text) > MAX_DEPTH:
        raise ConfigError(f"{path}: brackets nested more than {MAX_DEPTH} deep")
    try:
        return _validated(path, yaml.safe_load(text), environ)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except _Endless as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to read") from None


def _validated(path: str | Path, data: Any, environ: dict[str, str]) -> BridgeConfig:
    if data is None:
        data = {}
    if expanded_size(data, MAX_VALUES) > MAX_VALUES:
        raise ConfigError(f"{path}: expands to more than {MAX_VALUES} values "
                          "(YAML aliases repeated inside each other?)")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of settings")
    try:
        data = expand(data, environ)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    influx = data.get("influxdb") or {}
    if not isinstance(influx, dict):
        raise ConfigError(f"{path}: influxdb: must be a mapping of settings")
    influx = dict(influx)
    for key in ("url", "database", "username"):
        if environ.get(ENV_PREFIX + key.upper()):
            influx[key] = environ[ENV_PREFIX + key.upper()]
    if environ.get(ENV_PREFIX + "PASSWORD"):
        influx["password"] = {"env": ENV_PREFIX + "PASSWORD"}
    if influx:
        data["influxdb"] = influx
    try:
        return BridgeConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{_location(e)}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: {problems}") from None


def unreadable_secrets(config: BridgeConfig) -> list[str]:
    """Each secret of the settings that cannot be read now (a missing file, an unset
    variable), with where it is set: ``--check-config`` reports them before the bridge
    starts failing the scrapes or writes that need them."""
    problems: list[str] = []

    def walk(value: Any, where: str) -> None:
        if isinstance(value, Secret):
            try:
                value.resolve()
            except ConfigError as exc:
                problems.append(f"{where}: {exc}")
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name), f"{where}.{name}" if where else name)
        elif isinstance(value, list | tuple):
            for number, item in enumerate(value):
                walk(item, f"{where}.{number}")

    walk(config, "")
    return problems
