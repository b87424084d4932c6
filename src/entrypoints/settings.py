"""Settings from `AGENT_STREAM_*` environment variables (interfaces.md), parsed once at start."""

from __future__ import annotations

import math
import os
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, TypeVar

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./agent-stream.db"
DATABASE_URL_VARIABLE: Final = "AGENT_STREAM_DATABASE_URL"
# The schemes users write, and the async driver each one means (the only drivers installed).
_DATABASE_DRIVERS: Final = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
}
_DATABASE_URL_FORMS: Final = "postgresql://user@host/db or sqlite:///path/to/file.db"

DEFAULT_RECORDINGS_URL = "file://./recordings"

T = TypeVar("T")


class SettingsError(ValueError):
    """A setting has a value we cannot use; the message names the variable."""


def _get(environ: Mapping[str, str], name: str, default: T, parse: Callable[[str], T], check: str = "") -> T:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return parse(raw.strip())
    except ValueError:
        raise SettingsError(f"{name} must be {check or 'valid'}") from None


def _positive(raw: str) -> float:
    value = float(raw)
    if not 0 < value < math.inf:  # also refuses nan
        raise ValueError(raw)
    return value


def _non_negative(raw: str) -> float:
    value = float(raw)
    if not 0 <= value < math.inf:  # also refuses nan
        raise ValueError(raw)
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError(raw)
    return value


def _boolean(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def _log_format(raw: str) -> str:
    if raw not in ("console", "json"):
        raise ValueError(raw)
    return raw


def database_url(raw: str | None) -> str:
    """`AGENT_STREAM_DATABASE_URL` as the async driver URL: `postgres://` and `postgresql://` become
    `postgresql+asyncpg://`, `sqlite:///` becomes `sqlite+aiosqlite:///`; libpq's `sslmode` query
    option (as hosted PostgreSQL services print their URLs) becomes asyncpg's `ssl`. Anything else
    is refused naming the variable; the message never repeats the URL (it may hold a password)."""
    if raw is None or raw.strip() == "":
        return DEFAULT_DATABASE_URL
    try:
        url = make_url(raw.strip())
    except ArgumentError:
        raise SettingsError(
            f"{DATABASE_URL_VARIABLE} is not a database URL: use {_DATABASE_URL_FORMS}"
        ) from None
    driver = _DATABASE_DRIVERS.get(url.drivername.lower())
    if driver is None:
        raise SettingsError(
            f"{DATABASE_URL_VARIABLE}: {url.drivername!r} is not supported: use {_DATABASE_URL_FORMS}"
        )
    url = url.set(drivername=driver)
    if driver.startswith("postgresql"):
        url = _asyncpg_options(url)
    elif url.host or url.port:
        raise SettingsError(
            f"{DATABASE_URL_VARIABLE}: a SQLite URL names a file, not a host: "
            "sqlite:///relative/path.db or sqlite:////absolute/path.db"
        )
    return url.render_as_string(hide_password=False)


def _recordings_url(raw: str) -> str:
    if raw.startswith("file://") and len(raw) > len("file://"):
        return raw
    if raw.startswith("s3://") and raw.removeprefix("s3://").split("/", 1)[0]:
        return raw
    raise ValueError(raw)


def default_recordings_url(database: str) -> str:
    """`recordings` beside the embedded database's file (`./recordings` for the default one)."""
    url = make_url(database)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        folder = os.path.dirname(url.database) or "."
        return f"file://{folder}/recordings"
    return DEFAULT_RECORDINGS_URL


def _asyncpg_options(url: URL) -> URL:
    if "sslmode" not in url.query:
        return url
    query = dict(url.query)
    query.setdefault("ssl", query.pop("sslmode"))
    query.pop("sslmode", None)
    return url.set(query=query)


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    cloudonix_api_url: str = "https://api.cloudonix.io"
    secret_key: str | None = field(default=None, repr=False)
    public_url: str = "http://127.0.0.1:8000"
    handshake_timeout: float = 10.0
    provider_timeout: float = 5.0
    log_format: str = "console"
    drain_timeout: float = 30.0
    lookup_failures_per_minute: int = 20
    instance_ttl: float = 30.0
    busy_lag_ms: float = 150.0
    db_timeout: float = 5.0
    instance_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    instance_name: str = ""  # where this instance runs (host:port), set by `serve` and `demo`
    webhook_allow_private: bool = False  # webhooks to http URLs and private/loopback addresses
    tracing: bool = False  # OpenTelemetry spans exported over OTLP (`tracing_enabled`)
    recordings_url: str = DEFAULT_RECORDINGS_URL

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        d = cls()
        return cls(
            database_url=database_url(env.get(DATABASE_URL_VARIABLE)),
            cloudonix_api_url=_get(env, "AGENT_STREAM_CLOUDONIX_API_URL", d.cloudonix_api_url, str).rstrip(
                "/"
            ),
            secret_key=_get(env, "AGENT_STREAM_SECRET_KEY", None, str),
            public_url=_get(env, "AGENT_STREAM_PUBLIC_URL", d.public_url, str).rstrip("/"),
            handshake_timeout=_get(
                env,
                "AGENT_STREAM_HANDSHAKE_TIMEOUT",
                d.handshake_timeout,
                _positive,
                "a positive number of seconds",
            ),
            provider_timeout=_get(
                env,
                "AGENT_STREAM_PROVIDER_TIMEOUT",
                d.provider_timeout,
                _positive,
                "a positive number of seconds",
            ),
            log_format=_get(env, "AGENT_STREAM_LOG_FORMAT", d.log_format, _log_format, "'console' or 'json'"),
            drain_timeout=_get(
                env,
                "AGENT_STREAM_DRAIN_TIMEOUT",
                d.drain_timeout,
                _positive,
                "a positive number of seconds",
            ),
            lookup_failures_per_minute=_get(
                env,
                "AGENT_STREAM_LOOKUP_FAILURES_PER_MINUTE",
                d.lookup_failures_per_minute,
                _non_negative_int,
                "a whole number >= 0",
            ),
            instance_ttl=_get(
                env,
                "AGENT_STREAM_INSTANCE_TTL",
                d.instance_ttl,
                _positive,
                "a positive number of seconds",
            ),
            busy_lag_ms=_get(
                env,
                "AGENT_STREAM_BUSY_LAG_MS",
                d.busy_lag_ms,
                _non_negative,
                "a number of milliseconds >= 0",
            ),
            db_timeout=_get(
                env,
                "AGENT_STREAM_DB_TIMEOUT",
                d.db_timeout,
                _positive,
                "a positive number of seconds",
            ),
            webhook_allow_private=_get(
                env, "AGENT_STREAM_WEBHOOK_ALLOW_PRIVATE", d.webhook_allow_private, _boolean, "true or false"
            ),
            tracing=tracing_enabled(env),
            recordings_url=_get(
                env,
                "AGENT_STREAM_RECORDINGS_URL",
                default_recordings_url(database_url(env.get(DATABASE_URL_VARIABLE))),
                _recordings_url,
                "file://FOLDER or s3://BUCKET[/PREFIX]",
            ),
        )

    @property
    def embedded_database(self) -> bool:
        return self.database_url.startswith("sqlite")


def tracing_enabled(environ: Mapping[str, str]) -> bool:
    """Traces are exported when the standard OTLP endpoint variable is set (the general one or the
    traces one), unless `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` says otherwise."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    return any(environ.get(name, "").strip() for name in endpoints)


def instance_name(port: int) -> str:
    """Where an instance runs (`Settings.instance_name`): a restart under the same name reaps its
    previous life at once instead of after the TTL."""
    return f"{socket.gethostname()}:{port}"
