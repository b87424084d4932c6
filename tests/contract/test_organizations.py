"""Contract of `OrganizationRepository` (organisations and their users)."""

from __future__ import annotations

import dataclasses

import pytest

from application.ports.repositories import StorageError
from domain.agents import Organization
from tests.contract.conftest import Backend
from tests.contract.factories import OrganizationFactory, UserFactory


async def test_an_organization_round_trips(backend: Backend) -> None:
    built = OrganizationFactory.build()

    added = await backend.organizations.add(built)

    assert added.id is not None
    assert added == dataclasses.replace(built, id=added.id)
    assert await backend.organizations.get(added.id) == added


async def test_a_user_round_trips(backend: Backend) -> None:
    organization = await backend.new_organization()
    assert organization.id is not None
    built = UserFactory.build(organization_id=organization.id)

    added = await backend.organizations.add_user(built)

    assert added.id is not None
    assert added == dataclasses.replace(built, id=added.id)
    assert await backend.organizations.get_user(added.id) == added


async def test_add_assigns_new_ids_and_ignores_a_given_one(backend: Backend) -> None:
    first = await backend.organizations.add(OrganizationFactory.build(id=10**9))
    second = await backend.organizations.add(OrganizationFactory.build(id=10**9))

    assert first.id is not None
    assert second.id is not None
    assert first.id < second.id < 10**9


async def test_the_store_keeps_its_own_copy(backend: Backend) -> None:
    added = await backend.organizations.add(OrganizationFactory.build(name="before"))
    assert added.id is not None

    added.name = "changed by the caller"

    stored = await backend.organizations.get(added.id)
    assert stored is not None
    assert stored.name == "before"


async def test_unknown_ids_are_none(backend: Backend) -> None:
    assert await backend.organizations.get(10**9) is None
    assert await backend.organizations.get_user(10**9) is None


async def test_a_user_needs_an_existing_organization(backend: Backend) -> None:
    with pytest.raises(StorageError):
        await backend.organizations.add_user(UserFactory.build(organization_id=10**9))


async def test_the_owner_is_the_organizations_first_user(backend: Backend) -> None:
    organization = await backend.new_organization()
    assert organization.id is not None
    owner = await backend.new_user(organization)
    await backend.new_user(organization)
    await backend.new_user()  # another organisation's

    assert await backend.organizations.owner_of(organization.id) == owner


async def test_an_organization_without_users_has_no_owner(backend: Backend) -> None:
    organization = await backend.new_organization()
    assert organization.id is not None

    assert await backend.organizations.owner_of(organization.id) is None


async def test_list_all_has_every_organization_oldest_first(backend: Backend) -> None:
    first = await backend.organizations.add(Organization(name="first", max_concurrent_calls=3))
    second = await backend.organizations.add(Organization(name="second"))

    listed = await backend.organizations.list_all()

    ids = [organization.id for organization in listed]
    assert ids == sorted(ids)
    assert [o for o in listed if o.id in (first.id, second.id)] == [first, second]
