"""Logging: structlog and stdlib in one format (console or JSON), with secrets scrubbed.

Every line of a call carries the application's call context (run id, provider, domain). The
redaction processor is the second line of defence: code never logs secrets on purpose, and this
masks what slips through (secret-named keys, bearer tokens, query strings, agent-stream paths,
UUIDs, and digit runs long enough to be phone numbers, keeping their last four digits).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from application import log_context

REDACTED = "[redacted]"
SECRET_KEYS = frozenset(
    {
        "authorization",
        "bearer_token",
        "token",
        "api_key",
        "secret",
        "secret_key",
        "password",
        "query_string",
        "query",
        "url",
        "raw_url",
        "agent_uuid",
        "headers",
        "cookie",
    }
)
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b(bearer)\s+[^\s\"',;]+"), r"\1 " + REDACTED),
    (re.compile(r"(/api/v1/agent-stream/)[^\s\"'?]+"), r"\1" + REDACTED),
    (re.compile(r"\?[^\s\"'#]*=[^\s\"']*"), "?" + REDACTED),
    (re.compile(r"(?i)\b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b"), REDACTED),
    # AI providers' keys, as their SDKs and error messages print them (OpenAI-style `sk-...`)
    (re.compile(r"\b(?:sk|pk|rk|gsk|xai)[-_][A-Za-z0-9_\-*]{6,}"), REDACTED),
    (re.compile(r"(?i)(api[_-]?key[\"']?\s*[:=]\s*[\"']?)[^\s\"',;&}]+"), r"\1" + REDACTED),
)
_PHONE = re.compile(r"(?<![\w\-.])(\+?)(\d{3,11})(\d{4})(?!\d)")
# Whatever a pattern above matches contains one of these. Most values of a log line (timestamps,
# levels, event names) contain none, and one search costs a fraction of the seven substitutions.
_SUSPECT = re.compile(r"(?i)bearer|agent-stream/|\?|[0-9a-f]{8}|\b(?:sk|pk|rk|gsk|xai)[-_]|api[_-]?key|\d{7}")


def _mask_phone_digits(match: re.Match[str]) -> str:
    if len(match.group(2)) + len(match.group(3)) < 7:
        return match.group(0)
    return "***" + match.group(3)


def scrub(text: str) -> str:
    if _SUSPECT.search(text) is None:
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return _PHONE.sub(_mask_phone_digits, text)


# A trace id (32 hex digits) looks like a UUID without dashes, but names no one: it is what an operator
# pastes into the tracing backend, so it is kept as it is (and only a trace id is).
_TRACE_ID = re.compile(r"[0-9a-f]{32}")


def _scrub_value(key: str | None, value: Any) -> Any:
    if key == "trace_id" and isinstance(value, str) and _TRACE_ID.fullmatch(value):
        return value
    if key is not None and key.lower() in SECRET_KEYS and value not in (None, ""):
        return REDACTED
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _scrub_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub_value(None, v) for v in value]
    return value


def redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        event_dict[key] = _scrub_value(key, event_dict[key])
    return event_dict


def add_call_context(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in log_context.current().items():
        event_dict.setdefault(key, value)
    return event_dict


_RESERVED_RECORD_KEYS = frozenset({"_record", "_from_structlog", "positional_args", "color_message"})


def _drop_internal(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in _RESERVED_RECORD_KEYS:
        event_dict.pop(key, None)
    return event_dict


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        add_call_context,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def make_formatter(log_format: str = "console") -> logging.Formatter:
    """The formatter every line goes through: call context, redaction, then the renderer."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared_processors(), structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _drop_internal,
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
    )


def _not_a_connection_line(record: logging.LogRecord) -> bool:
    return record.msg not in ("connection open", "connection closed")


_structlog_configured = False


def configure_logging(log_format: str = "console", level: int = logging.INFO) -> None:
    """Configure structlog and the stdlib root logger for the whole process.

    structlog is configured on the first call only: loggers are cached on first use with the
    processor list of that moment, so a second `structlog.configure` would leave them on the old
    list (a test's `capture_logs` would then see nothing). Later calls set the format and level."""
    global _structlog_configured  # noqa: PLW0603 - once per process, by design
    if not _structlog_configured:
        structlog.configure(
            processors=[*_shared_processors(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
            cache_logger_on_first_use=True,
        )
        _structlog_configured = True
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(make_formatter(log_format))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # uvicorn's line per WebSocket opened and closed repeats ours (call_started, call_ended) without
    # the run id, twice a call.
    logging.getLogger("uvicorn.error").addFilter(_not_a_connection_line)
    # Access lines carry the raw path and query string: never emit them.
    logging.getLogger("uvicorn.access").disabled = True
    for noisy in ("httpx", "httpcore", "aiosqlite", "asyncio", "websockets"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
