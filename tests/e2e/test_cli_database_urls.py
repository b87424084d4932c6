"""Database URLs as users write them, through real `agent-stream` processes.

`postgres://` and `postgresql://` (and `sqlite:///`) work as the async driver URLs they mean. A
URL that cannot work, or a database that cannot be reached, is answered by every command with one
line naming `AGENT_STREAM_DATABASE_URL` and what is wrong, and exit status 2: no traceback, and
never the URL's password.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.pg import fresh_postgres_database
from tests.served import free_port

AGENT_STREAM = str(Path(sys.executable).with_name("agent-stream"))
SECRET_KEY = "cli-database-urls-secret-key-0123456789"
PASSWORD = "s3cret-Pa55word"
VARIABLE = "AGENT_STREAM_DATABASE_URL"
AGENT = "4b7cfa7e-0d5f-4c50-9a55-5d6c8d0a1f0b"

# every command of interfaces.md that uses the database
COMMANDS = {
    "serve": ["serve", "--port", "0"],
    "db upgrade": ["db", "upgrade"],
    "org create": ["org", "create", "--name", "Acme"],
    "agent create": ["agent", "create", "--org", "1", "--name", "Front desk"],
    "telephony add-cloudonix": ["telephony", "add-cloudonix", "--org", "1", "--domain", "acme"],
    "runs list": ["runs", "list", "--agent", AGENT],
    "demo": ["demo", "--port", "0"],
}


@dataclass
class Answer:
    code: int
    stdout: str
    stderr: str

    def one_line_naming_the_variable(self) -> str:
        """The error line; fails unless the answer is exactly one such line and exit status 2."""
        assert self.code == 2, (self.code, self.stderr[-3000:])
        assert "Traceback" not in self.stderr, self.stderr[-3000:]
        lines = self.stderr.splitlines()
        assert len(lines) == 1, self.stderr[-3000:]
        assert lines[0].startswith(f"agent-stream: {VARIABLE}"), lines[0]
        assert PASSWORD not in self.stderr + self.stdout
        return lines[0]


def agent_stream(args: list[str], cwd: Path, timeout: float = 120.0, **settings: str) -> Answer:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_STREAM_")}
    env.update(settings)
    env["CLOUDONIX_BEARER_TOKEN"] = "cx-token"
    done = subprocess.run(  # noqa: S603 - our own CLI
        [AGENT_STREAM, *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Answer(done.returncode, done.stdout, done.stderr)


def closed_port() -> int:
    """A loopback port nothing listens on (connection refused)."""
    return free_port()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word (a hung server, a black hole)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in accepted:
            conn.close()
        listener.close()


@pytest.fixture(scope="module")
def empty_postgres() -> Iterator[str]:
    """A database with no tables yet (`db upgrade` never ran)."""
    with fresh_postgres_database("agent_stream_cli_urls") as url:
        yield url


def as_written(url: str, scheme: str) -> str:
    """`url` (an asyncpg URL) as a user writes it: `postgres://…` or `postgresql://…`."""
    return make_url(url).set(drivername=scheme).render_as_string(hide_password=False)


@pytest.mark.parametrize("command", [name for name in COMMANDS if name != "serve"])
def test_every_command_answers_an_unreachable_database_in_one_line(command: str, tmp_path: Path):
    """(`serve` starts anyway and waits for its database: tests/e2e/test_database_faults.py.)"""
    url = f"postgresql://agent:{PASSWORD}@127.0.0.1:{closed_port()}/agent_stream"
    answer = agent_stream(
        COMMANDS[command], tmp_path, **{VARIABLE: url, "AGENT_STREAM_SECRET_KEY": SECRET_KEY}
    )
    line = answer.one_line_naming_the_variable()
    assert "connection refused" in line


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("nonsense", "is not a database URL"),
        (f"mysql://agent:{PASSWORD}@db/agent_stream", "'mysql' is not supported"),
        (f"postgresql+psycopg2://agent:{PASSWORD}@db/agent_stream", "'postgresql+psycopg2' is not supported"),
        ("sqlite:///no/such/folder/agent-stream.db", "the folder 'no/such/folder' of the SQLite database"),
        ("sqlite+aiosqlite:////no/such/folder/a.db", "the folder '/no/such/folder' of the SQLite database"),
        ("sqlite://somehost/agent-stream.db", "a SQLite URL names a file, not a host"),
        (f"postgres://agent:{PASSWORD}@no-such-host.invalid/agent_stream", "cannot resolve the host"),
    ],
)
def test_each_bad_url_form_is_one_line_and_exit_status_2(url: str, says: str, tmp_path: Path):
    for command in ("db upgrade", "runs list"):
        line = agent_stream(COMMANDS[command], tmp_path, **{VARIABLE: url}).one_line_naming_the_variable()
        assert says in line, line


def test_a_database_that_never_answers_is_one_line_within_the_database_timeout(
    silent_server: int, tmp_path: Path
):
    url = f"postgresql://agent:{PASSWORD}@127.0.0.1:{silent_server}/agent_stream"
    answer = agent_stream(
        COMMANDS["org create"], tmp_path, timeout=60, **{VARIABLE: url, "AGENT_STREAM_DB_TIMEOUT": "1"}
    )
    assert "did not answer within 1 s" in answer.one_line_naming_the_variable()


def test_a_refused_login_and_a_missing_database_are_one_line(empty_postgres: str, tmp_path: Path):
    no_database = make_url(empty_postgres).set(database="agent_stream_no_such_database")
    answer = agent_stream(
        COMMANDS["db upgrade"], tmp_path, **{VARIABLE: as_written(str(no_database), "postgres")}
    )
    # str() of a URL masks its password; the test server's user needs none
    assert 'database "agent_stream_no_such_database" does not exist' in answer.one_line_naming_the_variable()
    no_role = make_url(empty_postgres).set(username="agent_stream_no_such_role", password=PASSWORD)
    answer = agent_stream(
        COMMANDS["runs list"], tmp_path, **{VARIABLE: no_role.render_as_string(hide_password=False)}
    )
    assert "refused the login" in answer.one_line_naming_the_variable()


def test_an_unmigrated_postgresql_is_one_line_saying_db_upgrade(empty_postgres: str, tmp_path: Path):
    url = as_written(empty_postgres, "postgresql")
    settings = {VARIABLE: url, "AGENT_STREAM_SECRET_KEY": SECRET_KEY}
    for command in ("serve", "org create"):
        line = agent_stream(COMMANDS[command], tmp_path, **settings).one_line_naming_the_variable()
        assert "run `agent-stream db upgrade` first" in line, (command, line)


def test_postgres_and_postgresql_urls_work_as_users_write_them(tmp_path: Path):
    with fresh_postgres_database("agent_stream_cli_urls") as url:
        upgraded = agent_stream(COMMANDS["db upgrade"], tmp_path, **{VARIABLE: as_written(url, "postgres")})
        assert upgraded.code == 0, upgraded.stderr[-3000:]
        assert json.loads(upgraded.stdout)["applied"]
        created = agent_stream(COMMANDS["org create"], tmp_path, **{VARIABLE: as_written(url, "postgresql")})
        assert created.code == 0, created.stderr[-3000:]
        assert json.loads(created.stdout)["organization_id"] >= 1


def test_a_sqlite_url_without_the_driver_works(tmp_path: Path):
    created = agent_stream(COMMANDS["org create"], tmp_path, **{VARIABLE: "sqlite:///./first.db"})
    assert created.code == 0, created.stderr[-3000:]
    assert json.loads(created.stdout)["organization_id"] == 1
    assert (tmp_path / "first.db").is_file()
