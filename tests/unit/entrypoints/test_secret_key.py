"""Which key encrypts stored credentials: AGENT_STREAM_SECRET_KEY, else (embedded SQLite only) a key file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from entrypoints.secret_key import credential_cipher, secret_key_file
from entrypoints.settings import Settings, SettingsError

POSTGRES = "postgresql+asyncpg://agent@db.example.com/agent_stream"


def test_the_configured_secret_key_is_used(tmp_path: Path):
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/a.db", secret_key="configured-secret-key-123"
    )

    stored = credential_cipher(settings).encrypt("token")

    assert (
        credential_cipher(Settings(database_url=POSTGRES, secret_key="configured-secret-key-123")).decrypt(
            stored
        )
        == "token"
    )
    assert not (tmp_path / "a.key").exists()


def test_postgres_without_a_secret_key_refuses_to_start_naming_the_variable():
    with pytest.raises(SettingsError) as raised:
        credential_cipher(Settings(database_url=POSTGRES))

    assert "AGENT_STREAM_SECRET_KEY" in str(raised.value)


def test_a_short_secret_key_is_refused_naming_the_variable():
    with pytest.raises(SettingsError) as raised:
        credential_cipher(Settings(database_url=POSTGRES, secret_key="too-short"))

    assert "AGENT_STREAM_SECRET_KEY" in str(raised.value)


def test_embedded_sqlite_without_a_key_uses_a_private_key_file_beside_the_database(tmp_path: Path):
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/agent-stream.db")

    with capture_logs() as logs:
        first = credential_cipher(settings)
    second = credential_cipher(settings)

    key_file = tmp_path / "agent-stream.key"
    assert key_file.exists()
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert second.decrypt(first.encrypt("token")) == "token"  # the same key, read back
    [warning] = [line for line in logs if line["event"] == "secret_key_from_file"]
    assert warning["log_level"] == "warning"
    assert warning["key_file"] == str(key_file)
    assert key_file.read_text().strip() not in str(logs)


def test_in_memory_sqlite_without_a_key_gets_a_key_for_the_process():
    cipher = credential_cipher(Settings(database_url="sqlite+aiosqlite://"))

    assert cipher.decrypt(cipher.encrypt("token")) == "token"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite+aiosqlite:///./agent-stream.db", Path("./agent-stream.key")),
        ("sqlite+aiosqlite:////var/lib/agent-stream/data.sqlite", Path("/var/lib/agent-stream/data.key")),
        ("sqlite+aiosqlite://", None),
        ("sqlite+aiosqlite:///:memory:", None),
    ],
)
def test_where_the_key_file_lives(url: str, expected: Path | None):
    assert secret_key_file(url) == expected
