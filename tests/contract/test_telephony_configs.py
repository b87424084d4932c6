"""Contract of `TelephonyConfigRepository`: one configuration per (organisation, provider, domain)."""

from __future__ import annotations

import dataclasses

import pytest

from application.ports.repositories import DuplicateError, StorageError
from domain.telephony import Provider, SecretStr, TelephonyConfig
from tests.contract.conftest import Backend
from tests.contract.factories import TelephonyConfigFactory


async def _organization_id(backend: Backend) -> int:
    organization = await backend.new_organization()
    assert organization.id is not None
    return organization.id


async def test_a_configuration_round_trips(backend: Backend) -> None:
    built = TelephonyConfigFactory.build(organization_id=await _organization_id(backend))

    added = await backend.configs.add(built)

    assert added.id is not None
    assert added == dataclasses.replace(built, id=added.id)
    assert added.bearer_token.reveal() == built.bearer_token.reveal()
    found = await backend.configs.find_by_domain(built.organization_id, built.provider, built.domain_id)
    assert found == added


async def test_a_second_configuration_of_a_domain_is_a_duplicate(backend: Backend) -> None:
    organization_id = await _organization_id(backend)
    first = await backend.configs.add(TelephonyConfig.cloudonix(organization_id, "acme", "token-1"))

    with pytest.raises(DuplicateError):
        await backend.configs.add(TelephonyConfig.cloudonix(organization_id, "acme", "token-2"))

    assert await backend.configs.list_for_organization(organization_id) == [first]


async def test_the_same_domain_may_serve_two_organizations(backend: Backend) -> None:
    first_org, second_org = await _organization_id(backend), await _organization_id(backend)
    first = await backend.configs.add(TelephonyConfig.cloudonix(first_org, "shared", "token-of-first"))
    second = await backend.configs.add(TelephonyConfig.cloudonix(second_org, "shared", "token-of-second"))

    found_first = await backend.configs.find_by_domain(first_org, Provider.CLOUDONIX, "shared.cloudonix.net")
    found_second = await backend.configs.find_by_domain(
        second_org, Provider.CLOUDONIX, "shared.cloudonix.net"
    )

    assert found_first == first
    assert found_second == second
    assert found_second is not None
    assert found_second.bearer_token == SecretStr("token-of-second")


async def test_find_by_domain_never_crosses_organizations(backend: Backend) -> None:
    owner, stranger = await _organization_id(backend), await _organization_id(backend)
    await backend.configs.add(TelephonyConfig.cloudonix(owner, "private", "token"))

    assert await backend.configs.find_by_domain(stranger, Provider.CLOUDONIX, "private.cloudonix.net") is None


async def test_find_by_domain_matches_provider_and_domain(backend: Backend) -> None:
    organization_id = await _organization_id(backend)
    await backend.configs.add(TelephonyConfig.cloudonix(organization_id, "acme", "token"))

    assert (
        await backend.configs.find_by_domain(organization_id, Provider.TWILIO, "acme.cloudonix.net") is None
    )
    assert (
        await backend.configs.find_by_domain(organization_id, Provider.CLOUDONIX, "other.cloudonix.net")
        is None
    )


async def test_one_domain_under_two_providers_is_allowed(backend: Backend) -> None:
    organization_id = await _organization_id(backend)
    cloudonix = await backend.configs.add(TelephonyConfig.cloudonix(organization_id, "acme", "token"))
    twilio = await backend.configs.add(dataclasses.replace(cloudonix, id=None, provider=Provider.TWILIO))

    assert await backend.configs.list_for_organization(organization_id) == [cloudonix, twilio]


async def test_list_for_organization_holds_its_configurations_oldest_first(backend: Backend) -> None:
    organization_id, other = await _organization_id(backend), await _organization_id(backend)
    mine = [
        await backend.configs.add(TelephonyConfigFactory.build(organization_id=organization_id))
        for _ in range(3)
    ]
    await backend.configs.add(TelephonyConfigFactory.build(organization_id=other))

    assert await backend.configs.list_for_organization(organization_id) == mine


async def test_delete_removes_only_the_organizations_own_configuration(backend: Backend) -> None:
    owner, stranger = await _organization_id(backend), await _organization_id(backend)
    config = await backend.configs.add(TelephonyConfig.cloudonix(owner, "acme", "token"))
    assert config.id is not None

    assert await backend.configs.delete(stranger, config.id) is False
    assert await backend.configs.list_for_organization(owner) == [config]

    assert await backend.configs.delete(owner, config.id) is True
    assert await backend.configs.find_by_domain(owner, Provider.CLOUDONIX, "acme.cloudonix.net") is None
    assert await backend.configs.delete(owner, config.id) is False


async def test_a_deleted_domain_can_be_configured_again(backend: Backend) -> None:
    organization_id = await _organization_id(backend)
    config = await backend.configs.add(TelephonyConfig.cloudonix(organization_id, "acme", "old"))
    assert config.id is not None
    await backend.configs.delete(organization_id, config.id)

    again = await backend.configs.add(TelephonyConfig.cloudonix(organization_id, "acme", "new"))

    assert again.bearer_token == SecretStr("new")


async def test_a_configuration_needs_an_existing_organization(backend: Backend) -> None:
    with pytest.raises(StorageError) as raised:
        await backend.configs.add(TelephonyConfig.cloudonix(10**9, "acme", "token"))

    assert not isinstance(raised.value, DuplicateError)


async def test_storage_errors_do_not_reveal_the_token(backend: Backend) -> None:
    organization_id = await _organization_id(backend)
    await backend.configs.add(TelephonyConfig.cloudonix(organization_id, "acme", "first-secret-token"))

    with pytest.raises(DuplicateError) as raised:
        await backend.configs.add(TelephonyConfig.cloudonix(organization_id, "acme", "second-secret-token"))

    chain: list[BaseException] = []
    error: BaseException | None = raised.value
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    assert not any("secret-token" in str(error) for error in chain)
