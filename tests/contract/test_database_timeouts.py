"""A PostgreSQL server that stops answering, or resets us, costs a bounded wait and a `StorageError`;
the pool is whole afterwards (the connection a timeout abandoned is discarded, never reused).

The faults come from a real TCP proxy between the engine and the server (tests/tcp_proxy.py).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sql.database import create_engine, create_sessionmaker
from adapters.sql.repositories import SqlCallSlots, SqlOrganizationRepository
from application.ports.repositories import StorageError
from tests.contract.factories import EPOCH
from tests.tcp_proxy import Mode, TcpProxy

TIMEOUT = 1.0
# The bound plus SQLAlchemy's graceful close of the abandoned connection (at most 2 s), plus slack
# for a busy machine: what matters is that the wait ends, not its exact length.
BOUND = TIMEOUT + 4.0
NO_SUCH_ID = 2**62

pytestmark = pytest.mark.postgres


@pytest.fixture
def proxy(postgres_database_url: str) -> Iterator[TcpProxy]:
    url = make_url(postgres_database_url)
    with TcpProxy(str(url.query.get("host") or url.host), url.port or 5432) as running:
        yield running


@pytest.fixture
async def engine(postgres_database_url: str, proxy: TcpProxy) -> AsyncIterator[AsyncEngine]:
    url = make_url(postgres_database_url).difference_update_query(["host"])
    engine = create_engine(
        url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False), timeout=TIMEOUT
    )
    yield engine
    await engine.dispose()


async def _fails_within_bound(organizations: SqlOrganizationRepository) -> float:
    started = time.monotonic()
    with pytest.raises(StorageError):
        await organizations.get(NO_SUCH_ID)
    elapsed = time.monotonic() - started
    assert elapsed < BOUND, f"the failure took {elapsed:.1f}s"
    return elapsed


@pytest.mark.parametrize("fault", ["blackhole", "refuse"])
async def test_a_fault_is_a_bounded_storage_error_and_the_pool_recovers(
    engine: AsyncEngine, proxy: TcpProxy, fault: Mode
) -> None:
    sessions = create_sessionmaker(engine, transaction_timeout=TIMEOUT)
    organizations = SqlOrganizationRepository(sessions)
    slots = SqlCallSlots(sessions)
    assert await organizations.get(NO_SUCH_ID) is None  # one connection now waits in the pool

    proxy.set_mode(fault)
    await _fails_within_bound(organizations)  # the pooled connection stalls (or is reset)
    await _fails_within_bound(organizations)  # a new connection cannot be made
    with pytest.raises(StorageError):
        await slots.acquire(1, 5, "instance-a", EPOCH, 30.0)

    proxy.set_mode("pass")
    for _ in range(3):
        assert await organizations.get(NO_SUCH_ID) is None
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_the_transaction_bound_holds_whatever_the_driver_waits(
    postgres_database_url: str, proxy: TcpProxy
) -> None:
    """The adapters' own bound (the sessionmaker's) ends a stalled transaction even when the
    driver's timeouts are far longer: pool wait, connect and statements share one deadline."""
    url = make_url(postgres_database_url).difference_update_query(["host"])
    patient = create_engine(
        url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False), timeout=60
    )
    try:
        slots = SqlCallSlots(create_sessionmaker(patient, transaction_timeout=TIMEOUT))
        assert await slots.live_count(1, EPOCH) == 0  # a pooled connection, which will stall
        proxy.set_mode("blackhole")
        for _ in range(2):  # on the pooled connection, then on a new one
            started = time.monotonic()
            with pytest.raises(StorageError, match="did not answer in time"):
                await slots.acquire(1, 5, "instance-a", EPOCH, 30.0)
            assert time.monotonic() - started < BOUND
        proxy.set_mode("pass")
        assert await slots.live_count(1, EPOCH) == 0
    finally:
        await patient.dispose()
