"""The redaction of log text: each kind of secret is masked, and plain text passes unchanged."""

from __future__ import annotations

import logging

import pytest
import structlog
import structlog.testing

from entrypoints.logging import REDACTED, _not_a_connection_line, configure_logging, scrub


@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        ("Authorization: Bearer XI12abcdefCDEF", "XI12abcdefCDEF", "Bearer"),
        ("GET /api/v1/agent-stream/3b3bbc64-aaaa HTTP/1.1", "3b3bbc64-aaaa", "/api/v1/agent-stream/"),
        ("wss://h/x?provider=cloudonix&Domain=acme", "Domain=acme", "wss://h/x"),
        ("agent 3b3bbc64-1d2e-4f5a-8b9c-0d1e2f3a4b5c done", "3b3bbc64-1d2e", "agent"),
        ("agent 3B3BBC641D2E4F5A8B9C0D1E2F3A4B5C done", "3B3BBC641D2E", "agent"),
        ("Incorrect API key provided: sk-proj-abcdef123456", "sk-proj-abcdef123456", "Incorrect"),
        ("{'api_key': 'k-unit-123'}", "k-unit-123", "api_key"),
        ("caller +15555550100 rang", "555555", "***0100"),
    ],
)
def test_each_kind_of_secret_is_masked(text: str, secret: str, kept: str) -> None:
    scrubbed = scrub(text)
    assert secret not in scrubbed
    assert kept in scrubbed
    assert REDACTED in scrubbed or "***" in scrubbed


@pytest.mark.parametrize(
    "text", ["2026-12-03T15:09:22.364656Z", "call_ended", "info", "Agent failed: llm failed", "port 8000"]
)
def test_plain_text_passes_unchanged(text: str) -> None:
    assert scrub(text) == text


def test_uvicorns_connection_lines_are_dropped_and_its_others_kept() -> None:
    def record(msg: str) -> logging.LogRecord:
        return logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, msg, None, None)

    assert not _not_a_connection_line(record("connection open"))
    assert not _not_a_connection_line(record("connection closed"))
    assert _not_a_connection_line(record("Uvicorn running on %s://%s:%d (Press CTRL+C to quit)"))


def test_configuring_again_keeps_loggers_already_used_on_the_live_configuration() -> None:
    """structlog caches a logger on first use with the processor list of that moment: a second
    `configure_logging` (a second app in one test session) must not leave it on an old list."""
    used = structlog.get_logger("tests.configured_twice")
    configure_logging("json", logging.INFO)
    used.info("first_use")
    configure_logging("console", logging.INFO)
    with structlog.testing.capture_logs() as events:
        used.info("seen")
    assert [e["event"] for e in events] == ["seen"]
