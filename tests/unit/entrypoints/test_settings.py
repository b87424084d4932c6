"""`AGENT_STREAM_DATABASE_URL` as users write it becomes the async driver URL; the rest is refused."""

import pytest

from entrypoints.settings import DEFAULT_DATABASE_URL, Settings, SettingsError, database_url


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("postgres://u@db/app", "postgresql+asyncpg://u@db/app"),
        ("postgresql://u:p%40ss@db:6543/app", "postgresql+asyncpg://u:p%40ss@db:6543/app"),
        ("PostgreSQL://u@db/app", "postgresql+asyncpg://u@db/app"),
        ("postgresql+asyncpg://u@db/app", "postgresql+asyncpg://u@db/app"),
        ("postgres://u@db/app?sslmode=require", "postgresql+asyncpg://u@db/app?ssl=require"),
        ("sqlite:///./agent-stream.db", "sqlite+aiosqlite:///./agent-stream.db"),
        ("sqlite:////var/lib/agent-stream.db", "sqlite+aiosqlite:////var/lib/agent-stream.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("  sqlite:///x.db ", "sqlite+aiosqlite:///x.db"),
        ("", DEFAULT_DATABASE_URL),
    ],
)
def test_the_urls_users_write_become_async_driver_urls(written, meant):
    assert database_url(written) == meant
    assert Settings.from_env({"AGENT_STREAM_DATABASE_URL": written}).database_url == meant


@pytest.mark.parametrize(
    ("written", "says"),
    [
        ("nonsense", "is not a database URL"),
        ("mysql://u:hunter2@db/app", "'mysql' is not supported"),
        ("postgresql+psycopg2://u:hunter2@db/app", "'postgresql+psycopg2' is not supported"),
        ("sqlite://host/x.db", "names a file, not a host"),
    ],
)
def test_other_urls_are_refused_naming_the_variable_never_the_password(written, says):
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"AGENT_STREAM_DATABASE_URL": written})
    message = str(refused.value)
    assert message.startswith("AGENT_STREAM_DATABASE_URL") and says in message
    assert "hunter2" not in message and "\n" not in message
