"""Contract of `ApiKeyRepository`: hashes in, the owning organisation out."""

from __future__ import annotations

import pytest

from application.ports.repositories import DuplicateError, StorageError
from domain.api_keys import hash_api_key, new_api_key
from tests.contract.conftest import Backend


async def _organization_id(backend: Backend) -> int:
    organization = await backend.new_organization()
    assert organization.id is not None
    return organization.id


async def test_a_key_names_its_organisation(backend: Backend) -> None:
    organization_id = await _organization_id(backend)
    key = new_api_key()

    await backend.api_keys.add(organization_id, hash_api_key(key))

    assert await backend.api_keys.organization_for(hash_api_key(key)) == organization_id


async def test_an_organisation_may_hold_several_keys(backend: Backend) -> None:
    organization_id, other = await _organization_id(backend), await _organization_id(backend)
    keys = [new_api_key() for _ in range(3)]
    for key in keys[:2]:
        await backend.api_keys.add(organization_id, hash_api_key(key))
    await backend.api_keys.add(other, hash_api_key(keys[2]))

    assert [await backend.api_keys.organization_for(hash_api_key(key)) for key in keys] == [
        organization_id,
        organization_id,
        other,
    ]


async def test_an_unknown_hash_names_nobody(backend: Backend) -> None:
    await backend.api_keys.add(await _organization_id(backend), hash_api_key(new_api_key()))

    assert await backend.api_keys.organization_for(hash_api_key(new_api_key())) is None
    assert await backend.api_keys.organization_for("") is None


async def test_the_key_itself_is_not_a_hash_that_matches(backend: Backend) -> None:
    key = new_api_key()
    await backend.api_keys.add(await _organization_id(backend), hash_api_key(key))

    assert await backend.api_keys.organization_for(key) is None


async def test_one_hash_belongs_to_one_organisation(backend: Backend) -> None:
    first, second = await _organization_id(backend), await _organization_id(backend)
    key_hash = hash_api_key(new_api_key())
    await backend.api_keys.add(first, key_hash)

    with pytest.raises(DuplicateError):
        await backend.api_keys.add(second, key_hash)

    assert await backend.api_keys.organization_for(key_hash) == first


async def test_a_key_needs_an_existing_organisation(backend: Backend) -> None:
    with pytest.raises(StorageError) as raised:
        await backend.api_keys.add(10**9, hash_api_key(new_api_key()))

    assert not isinstance(raised.value, DuplicateError)


async def test_replace_leaves_the_new_key_the_only_one(backend: Backend) -> None:
    organization_id, other = await _organization_id(backend), await _organization_id(backend)
    old = [new_api_key() for _ in range(2)]
    for key in old:
        await backend.api_keys.add(organization_id, hash_api_key(key))
    others = new_api_key()
    await backend.api_keys.add(other, hash_api_key(others))
    new = new_api_key()

    revoked = await backend.api_keys.replace(organization_id, hash_api_key(new))

    assert revoked == 2
    assert [await backend.api_keys.organization_for(hash_api_key(key)) for key in old] == [None, None]
    assert await backend.api_keys.organization_for(hash_api_key(new)) == organization_id
    assert await backend.api_keys.organization_for(hash_api_key(others)) == other  # untouched


async def test_replace_of_an_organisation_without_keys_adds_one(backend: Backend) -> None:
    organization_id = await _organization_id(backend)
    key = new_api_key()

    assert await backend.api_keys.replace(organization_id, hash_api_key(key)) == 0
    assert await backend.api_keys.organization_for(hash_api_key(key)) == organization_id


async def test_replace_with_another_organisations_hash_changes_nothing(backend: Backend) -> None:
    organization_id, other = await _organization_id(backend), await _organization_id(backend)
    mine, theirs = new_api_key(), new_api_key()
    await backend.api_keys.add(organization_id, hash_api_key(mine))
    await backend.api_keys.add(other, hash_api_key(theirs))

    with pytest.raises(DuplicateError):
        await backend.api_keys.replace(organization_id, hash_api_key(theirs))

    assert await backend.api_keys.organization_for(hash_api_key(mine)) == organization_id  # rolled back
    assert await backend.api_keys.organization_for(hash_api_key(theirs)) == other
