"""The run feed, in memory and over PostgreSQL LISTEN/NOTIFY.

In memory there is one process, so "another instance" is the same feed; on PostgreSQL two feeds on
one database stand for two instances, each with its own listener connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

import asyncpg
import pytest

from adapters.memory.run_feed import SUBSCRIBER_QUEUE, InMemoryRunFeed
from adapters.sql.notifications import asyncpg_dsn
from adapters.sql.run_feed import APPLICATION_NAME, CHANNEL, PgRunFeed, run_feed
from application.ports.run_feed import RunChange, RunFeed
from tests.pg import call_control_listeners, fresh_postgres_database, terminate_backends
from tests.served import free_port

DB_TIMEOUT = 2.0
ORG, OTHER_ORG = 1, 2
AGENT = "0b7e4a2c-6d1f-4c39-9a57-1f2e3d4c5b6a"
ARRIVAL = 2.0  # seconds a change may take to cross instances (well under 1 s in practice)


def change(run_id: int, state: str = "running", organization_id: int = ORG) -> RunChange:
    return RunChange(organization_id, run_id, AGENT, state)


@dataclass
class Pair:
    a: RunFeed
    b: RunFeed


@dataclass
class PgPair:
    a: PgRunFeed
    b: PgRunFeed


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with fresh_postgres_database("agent_stream_feed") as url:
        yield url


async def _pg_pair(database_url: str) -> AsyncIterator[PgPair]:
    a = PgRunFeed(database_url, "A", db_timeout=DB_TIMEOUT)
    b = PgRunFeed(database_url, "B", db_timeout=DB_TIMEOUT)
    await a.start()
    await b.start()
    assert a.listening and b.listening
    try:
        yield PgPair(a, b)
    finally:
        await a.stop()
        await b.stop()


@pytest.fixture(params=["memory", "postgres"])
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[Pair]:
    if request.param == "memory":
        feed = InMemoryRunFeed()
        yield Pair(feed, feed)
    else:
        async for made in _pg_pair(request.getfixturevalue("database_url")):
            yield Pair(made.a, made.b)


@pytest.fixture
async def pg_pair(database_url: str) -> AsyncIterator[PgPair]:
    async for made in _pg_pair(database_url):
        yield made


async def _next(changes: AsyncIterator[RunChange], within: float = ARRIVAL) -> RunChange:
    async with asyncio.timeout(within):
        return await anext(changes)


async def _nothing_more(changes: AsyncIterator[RunChange], within: float = 0.5) -> None:
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(within):
            await anext(changes)


def _subscribe(
    feed: RunFeed, organization_id: int = ORG
) -> AbstractAsyncContextManager[AsyncIterator[RunChange]]:
    return feed.subscribe(organization_id)


async def test_a_change_published_on_one_instance_reaches_subscribers_on_both(pair: Pair):
    async with _subscribe(pair.a) as on_a, _subscribe(pair.b) as on_b:
        pair.a.publish(change(7, "running"))
        pair.a.publish(change(7, "completed"))

        assert [await _next(on_b), await _next(on_b)] == [change(7, "running"), change(7, "completed")]
        assert [await _next(on_a), await _next(on_a)] == [change(7, "running"), change(7, "completed")]
        await _nothing_more(on_a)  # its own change once, not again when the notification comes back


async def test_subscribers_see_only_their_organisations_runs(pair: Pair):
    async with _subscribe(pair.b, ORG) as ours, _subscribe(pair.b, OTHER_ORG) as theirs:
        pair.a.publish(change(8, organization_id=ORG))

        assert await _next(ours) == change(8)
        await _nothing_more(theirs)


async def test_a_subscriber_sees_changes_from_when_it_subscribed(pair: Pair):
    pair.a.publish(change(9))
    await asyncio.sleep(0.3)  # delivered to nobody
    async with _subscribe(pair.b) as changes:
        pair.a.publish(change(10))

        assert await _next(changes) == change(10)


async def test_a_slow_subscriber_loses_the_oldest_changes_and_never_holds_up_the_others(pair: Pair):
    count = SUBSCRIBER_QUEUE + 44
    async with _subscribe(pair.b) as slow, _subscribe(pair.b) as reading:
        seen: list[int] = []

        async def read() -> None:
            while len(seen) < count:
                seen.append((await anext(reading)).run_id)

        reader = asyncio.create_task(read())
        loop = asyncio.get_running_loop()
        longest = 0.0
        for run_id in range(1, count + 1):
            began = loop.time()
            pair.a.publish(change(run_id))  # returns at once: nothing waits for a reader
            longest = max(longest, loop.time() - began)
            await asyncio.sleep(0)  # the reading subscriber keeps up; the slow one never reads
        assert longest < 0.05
        await asyncio.wait_for(reader, ARRIVAL * 2)
        assert seen == list(range(1, count + 1))

        kept = [(await _next(slow)).run_id for _ in range(SUBSCRIBER_QUEUE)]
        assert kept == list(range(count - SUBSCRIBER_QUEUE + 1, count + 1))  # the newest
        await _nothing_more(slow)


async def test_a_subscription_ends_with_its_block(pair: Pair):
    async with _subscribe(pair.b):
        pass
    pair.a.publish(change(11))  # nobody to deliver to: nothing breaks
    await asyncio.sleep(0.5)  # it has crossed to B by now
    async with _subscribe(pair.b) as changes:
        pair.a.publish(change(12))
        assert await _next(changes) == change(12)


async def test_stray_and_malformed_notifications_are_ignored(pg_pair: PgPair, database_url: str):
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    async with _subscribe(pg_pair.b) as changes:
        try:
            for payload in [
                "not json",
                "[]",
                '{"from": "Z", "organization_id": 1, "run_id": "7", "agent_uuid": "a", "state": "running"}',
                '{"from": "Z", "organization_id": 0, "run_id": 7, "agent_uuid": "a", "state": "running"}',
                '{"from": "Z", "organization_id": 1, "run_id": 7, "agent_uuid": "a"}',
                '{"from": "Z", "organization_id": 1, "run_id": 7, "agent_uuid": "'
                + "x" * 500
                + '", "state": "r"}',
            ]:
                await connection.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
            await connection.execute(
                "SELECT pg_notify($1, $2)",
                CHANNEL,
                '{"from": "Z", "organization_id": 1, "run_id": 5, "agent_uuid": "'
                + AGENT
                + '", "state": "failed"}',
            )
        finally:
            await connection.close()

        assert await _next(changes) == change(5, "failed")  # the one well-formed change, only


async def test_the_feeds_come_back_after_their_connections_are_killed(
    pg_pair: PgPair, database_url: str, caplog: pytest.LogCaptureFixture
):
    before = await call_control_listeners(database_url, APPLICATION_NAME)
    assert len(before) == 2

    async with _subscribe(pg_pair.b) as changes:
        with caplog.at_level(logging.INFO, logger="adapters.sql.run_feed"):
            await terminate_backends(database_url, before)
            deadline = asyncio.get_running_loop().time() + 10  # a few seconds to reconnect, at most 10
            while asyncio.get_running_loop().time() < deadline:
                now = set(await call_control_listeners(database_url, APPLICATION_NAME))
                if len(now - set(before)) == 2 and pg_pair.a.listening and pg_pair.b.listening:
                    break
                await asyncio.sleep(0.1)
            pg_pair.a.publish(change(13))

            assert await _next(changes) == change(13)

    after = await call_control_listeners(database_url, APPLICATION_NAME)
    assert len(after) == 2
    assert not set(after) & set(before)
    events = [record.message for record in caplog.records]
    assert events.count("run_feed_listener_recovered") == 2


async def test_publishing_never_waits_for_an_unreachable_database(caplog: pytest.LogCaptureFixture):
    url = f"postgresql+asyncpg://agent:s3cret-pass@127.0.0.1:{free_port()}/nowhere"

    with caplog.at_level(logging.DEBUG, logger="adapters.sql.run_feed"):
        async with run_feed(url, "A", db_timeout=0.5) as feed, _subscribe(feed) as changes:
            loop = asyncio.get_running_loop()
            began = loop.time()
            for run_id in range(1, 2001):
                feed.publish(change(run_id))
            assert loop.time() - began < 0.5
            assert (
                await _next(changes)
            ).run_id == 2000 - SUBSCRIBER_QUEUE + 1  # this instance's own, at once
            await asyncio.sleep(1.5)

    messages = [record.message for record in caplog.records]
    assert messages.count("run_feed_listener_failed") == 1
    assert "s3cret-pass" not in caplog.text


async def test_the_embedded_database_gets_the_in_memory_feed(tmp_path):
    async with run_feed(f"sqlite+aiosqlite:///{tmp_path}/a.db", "A", db_timeout=1) as feed:
        assert isinstance(feed, InMemoryRunFeed)
