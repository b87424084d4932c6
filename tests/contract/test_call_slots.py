"""Contract of `CallSlots`: leased concurrent-call slots per organisation, taken atomically."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from tests.contract.conftest import Backend
from tests.contract.factories import EPOCH

TTL = 30.0
NOW = EPOCH


async def _organization_id(backend: Backend, limit: int = 10) -> int:
    organization = await backend.new_organization(max_concurrent_calls=limit)
    assert organization.id is not None
    return organization.id


async def test_slots_are_taken_up_to_the_limit(backend: Backend) -> None:
    organization_id = await _organization_id(backend)

    taken = [await backend.slots.acquire(organization_id, 3, "instance-a", NOW, TTL) for _ in range(3)]

    assert all(taken)
    assert len(set(taken)) == 3
    assert await backend.slots.acquire(organization_id, 3, "instance-a", NOW, TTL) is None
    assert await backend.slots.live_count(organization_id, NOW) == 3


async def test_a_zero_limit_admits_nobody(backend: Backend) -> None:
    organization_id = await _organization_id(backend)

    assert await backend.slots.acquire(organization_id, 0, "instance-a", NOW, TTL) is None


async def test_limits_are_per_organization(backend: Backend) -> None:
    full, other = await _organization_id(backend), await _organization_id(backend)
    assert await backend.slots.acquire(full, 1, "instance-a", NOW, TTL)

    assert await backend.slots.acquire(full, 1, "instance-a", NOW, TTL) is None
    assert await backend.slots.acquire(other, 1, "instance-a", NOW, TTL)
    assert await backend.slots.live_count(full, NOW) == 1
    assert await backend.slots.live_count(other, NOW) == 1


async def test_an_unknown_organization_gets_no_slot(backend: Backend) -> None:
    assert await backend.slots.acquire(10**9, 5, "instance-a", NOW, TTL) is None


async def test_release_frees_the_slot(backend: Backend) -> None:
    organization_id = await _organization_id(backend)
    slot = await backend.slots.acquire(organization_id, 1, "instance-a", NOW, TTL)
    assert slot is not None

    await backend.slots.release(slot)

    assert await backend.slots.live_count(organization_id, NOW) == 0
    assert await backend.slots.acquire(organization_id, 1, "instance-a", NOW, TTL) is not None


async def test_releasing_twice_or_an_unknown_slot_is_harmless(backend: Backend) -> None:
    organization_id = await _organization_id(backend)
    slot = await backend.slots.acquire(organization_id, 2, "instance-a", NOW, TTL)
    other = await backend.slots.acquire(organization_id, 2, "instance-a", NOW, TTL)
    assert slot is not None
    assert other is not None

    await backend.slots.release(slot)
    await backend.slots.release(slot)
    await backend.slots.release("0" * 32)

    assert await backend.slots.live_count(organization_id, NOW) == 1


async def test_an_expired_lease_frees_the_slot(backend: Backend) -> None:
    organization_id = await _organization_id(backend)
    assert await backend.slots.acquire(organization_id, 1, "crashed", NOW, TTL)
    expiry = NOW + timedelta(seconds=TTL)

    assert await backend.slots.live_count(organization_id, expiry - timedelta(microseconds=1)) == 1
    assert (
        await backend.slots.acquire(organization_id, 1, "instance-b", expiry - timedelta(seconds=1), TTL)
        is None
    )
    assert await backend.slots.live_count(organization_id, expiry) == 0
    assert await backend.slots.acquire(organization_id, 1, "instance-b", expiry, TTL) is not None


async def test_renew_extends_the_named_slots_only(backend: Backend) -> None:
    organization_id = await _organization_id(backend)
    held = [await backend.slots.acquire(organization_id, 5, "alive", NOW, TTL) for _ in range(2)]
    assert await backend.slots.acquire(organization_id, 5, "alive", NOW, TTL)  # a slot it lost track of
    assert await backend.slots.acquire(organization_id, 5, "silent", NOW, TTL)

    await backend.slots.renew([slot for slot in held if slot], NOW + timedelta(seconds=20), TTL)
    await backend.slots.renew([], NOW + timedelta(seconds=20), TTL)  # nothing held: nothing to do

    later = NOW + timedelta(seconds=40)
    assert await backend.slots.live_count(organization_id, later) == 2
    assert await backend.slots.live_count(organization_id, NOW + timedelta(seconds=50)) == 0


async def test_concurrent_acquires_never_exceed_the_limit(backend: Backend) -> None:
    organization_id = await _organization_id(backend, limit=5)
    # Two adapters over one store, as two service instances would share one database.
    adapters = (backend.slots, backend.other_instance_slots)

    taken = await asyncio.gather(
        *(adapters[n % 2].acquire(organization_id, 5, f"instance-{n % 2}", NOW, TTL) for n in range(20))
    )

    granted = [slot for slot in taken if slot is not None]
    assert len(granted) == 5
    assert len(set(granted)) == 5
    assert await backend.slots.live_count(organization_id, NOW) == 5


async def test_concurrent_acquires_and_releases_keep_the_count_right(backend: Backend) -> None:
    organization_id = await _organization_id(backend, limit=3)

    async def call(n: int) -> bool:
        slots = (backend.slots, backend.other_instance_slots)[n % 2]
        slot = await slots.acquire(organization_id, 3, f"instance-{n % 2}", NOW, TTL)
        if slot is None:
            return False
        assert await slots.live_count(organization_id, NOW) <= 3
        await slots.release(slot)
        return True

    results = await asyncio.gather(*(call(n) for n in range(30)))

    assert any(results)
    assert await backend.slots.live_count(organization_id, NOW) == 0
