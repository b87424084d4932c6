"""The call-control channel between instances, in memory and over PostgreSQL LISTEN/NOTIFY.

Two channels stand for two instances (A asks, B holds the call); each serves what is addressed to
it with a handler that records the requests. On PostgreSQL they are real listeners on one database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import asyncpg
import pytest

from adapters.memory.call_control import InMemoryCallControlHub
from adapters.sql.call_control import CHANNEL, PgCallControl, asyncpg_dsn
from application.ports.call_control import (
    CallControlChannel,
    ControlAction,
    ControlAnswer,
    ControlRequest,
    HolderUnavailableError,
)
from tests.pg import call_control_listeners, fresh_postgres_database, terminate_backends
from tests.served import free_port

ACK_TIMEOUT = 1.0
DB_TIMEOUT = 2.0
HANGUP = ControlRequest(7, "WR-AGS-00000007", ControlAction.HANGUP)
TRANSFER = ControlRequest(8, "WR-AGS-00000008", ControlAction.TRANSFER, "sip:desk@example.com")


@dataclass
class Holder:
    """An instance's handler: answers `answer` and records what it was asked."""

    answer: ControlAnswer = ControlAnswer.TAKEN
    asked: list[ControlRequest] = field(default_factory=list)

    async def serve(self, request: ControlRequest) -> ControlAnswer:
        self.asked.append(request)
        return self.answer


@dataclass
class Pair:
    a: CallControlChannel
    b: CallControlChannel
    a_holder: Holder
    b_holder: Holder


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with fresh_postgres_database("agent_stream_control") as url:
        yield url


async def _pg_pair(database_url: str) -> AsyncIterator[Pair]:
    a_holder, b_holder = Holder(), Holder()
    a = PgCallControl(database_url, "A", a_holder.serve, db_timeout=DB_TIMEOUT, ack_timeout=ACK_TIMEOUT)
    b = PgCallControl(database_url, "B", b_holder.serve, db_timeout=DB_TIMEOUT, ack_timeout=ACK_TIMEOUT)
    await a.start()
    await b.start()
    assert a.listening and b.listening
    try:
        yield Pair(a, b, a_holder, b_holder)
    finally:
        await a.stop()
        await b.stop()


async def _memory_pair() -> AsyncIterator[Pair]:
    hub = InMemoryCallControlHub()
    a_holder, b_holder = Holder(), Holder()
    yield Pair(
        hub.join("A", a_holder.serve, ACK_TIMEOUT),
        hub.join("B", b_holder.serve, ACK_TIMEOUT),
        a_holder,
        b_holder,
    )


@pytest.fixture(params=["memory", "postgres"])
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[Pair]:
    if request.param == "memory":
        async for made in _memory_pair():
            yield made
    else:
        async for made in _pg_pair(request.getfixturevalue("database_url")):
            yield made


@pytest.fixture
async def pg_pair(database_url: str) -> AsyncIterator[Pair]:
    async for made in _pg_pair(database_url):
        yield made


@pytest.mark.parametrize(
    ("url", "dsn"),
    [
        ("postgresql+asyncpg://u:p%40ss@db:5433/agents", "postgresql://u:p%40ss@db:5433/agents"),
        (
            "postgresql+asyncpg://postgres@/postgres?host=/run/pg",
            "postgresql://postgres@/postgres?host=%2Frun%2Fpg",
        ),
        ("postgresql+asyncpg://u@db/a?ssl=require", "postgresql://u@db/a?sslmode=require"),
        (
            "postgresql+asyncpg://u@db/a?prepared_statement_cache_size=0&command_timeout=5",
            "postgresql://u@db/a",
        ),
    ],
)
def test_the_listener_connects_with_the_databases_own_address(url: str, dsn: str):
    assert asyncpg_dsn(url) == dsn


async def test_the_holder_gets_the_request_and_its_answer_comes_back(pair: Pair):
    assert await pair.a.ask("B", HANGUP) is ControlAnswer.TAKEN
    assert await pair.a.ask("B", TRANSFER) is ControlAnswer.TAKEN

    assert pair.b_holder.asked == [HANGUP, TRANSFER]
    assert pair.a_holder.asked == []  # addressed to B only


async def test_a_holder_without_the_call_says_so(pair: Pair):
    pair.a_holder.answer = ControlAnswer.NOT_LIVE

    assert await pair.b.ask("A", HANGUP) is ControlAnswer.NOT_LIVE
    assert pair.a_holder.asked == [HANGUP]


async def test_an_instance_that_is_not_there_does_not_answer(pair: Pair):
    loop = asyncio.get_running_loop()
    began = loop.time()

    with pytest.raises(HolderUnavailableError):
        await pair.a.ask("C", HANGUP)

    assert loop.time() - began < ACK_TIMEOUT + 5
    assert pair.a_holder.asked == pair.b_holder.asked == []


async def test_concurrent_requests_each_get_their_own_answer(pg_pair: Pair):
    requests = [ControlRequest(n, f"WR-AGS-{n:08d}", ControlAction.HANGUP) for n in range(1, 21)]

    answers = await asyncio.gather(*(pg_pair.a.ask("B", r) for r in requests))

    assert answers == [ControlAnswer.TAKEN] * 20
    assert sorted(r.run_id for r in pg_pair.b_holder.asked) == list(range(1, 21))


async def test_stray_and_malformed_notifications_are_ignored(pg_pair: Pair, database_url: str):
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        for payload in [
            "not json",
            "[]",
            '{"kind": "request", "to": "B"}',
            '{"kind": "request", "id": "x", "from": "Z", "to": "B", "run_id": "7", "run_name": "r", '
            '"action": "hangup"}',
            '{"kind": "request", "id": "x", "from": "Z", "to": "B", "run_id": 7, "run_name": "r", '
            '"action": "drop_table"}',
            '{"kind": "ack", "id": "nobody-waits", "from": "Z", "to": "A", "answer": "taken"}',
        ]:
            await connection.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
    finally:
        await connection.close()

    assert await pg_pair.a.ask("B", HANGUP) is ControlAnswer.TAKEN
    assert pg_pair.b_holder.asked == [HANGUP]


async def test_the_listeners_come_back_after_their_connections_are_killed(
    pg_pair: Pair, database_url: str, caplog: pytest.LogCaptureFixture
):
    before = await call_control_listeners(database_url)
    assert len(before) == 2

    with caplog.at_level(logging.INFO, logger="adapters.sql.call_control"):
        await terminate_backends(database_url, before)
        answer = None
        deadline = asyncio.get_running_loop().time() + 10  # a few seconds to reconnect, at most 10
        while answer is None and asyncio.get_running_loop().time() < deadline:
            try:
                answer = await pg_pair.a.ask("B", HANGUP)
            except HolderUnavailableError:
                await asyncio.sleep(0.1)

    assert answer is ControlAnswer.TAKEN
    after = await call_control_listeners(database_url)
    assert len(after) == 2
    assert not set(after) & set(before)
    events = [record.message for record in caplog.records]
    assert events.count("call_control_listener_failed") == 2  # one each, no traceback
    assert events.count("call_control_listener_recovered") == 2
    assert not any(record.exc_info for record in caplog.records)


async def test_an_unreachable_database_is_logged_once_and_never_with_its_password(
    caplog: pytest.LogCaptureFixture,
):
    url = f"postgresql+asyncpg://agent:s3cret-pass@127.0.0.1:{free_port()}/nowhere"
    channel = PgCallControl(url, "A", Holder().serve, db_timeout=0.5, ack_timeout=0.5)

    with caplog.at_level(logging.DEBUG, logger="adapters.sql.call_control"):
        await channel.start()  # does not block start-up beyond the database timeout
        await asyncio.sleep(2.0)  # several attempts
        with pytest.raises(HolderUnavailableError):
            await channel.ask("B", HANGUP)
        await channel.stop()

    assert not channel.listening
    messages = [record.message for record in caplog.records]
    assert messages.count("call_control_listener_failed") == 1
    assert "s3cret-pass" not in caplog.text
    for record in caplog.records:
        assert "s3cret-pass" not in str(record.__dict__)
