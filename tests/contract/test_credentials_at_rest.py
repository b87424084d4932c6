"""The SQL telephony repository keeps bearer tokens encrypted, and still reads rows written in clear.

SQL backends only: the in-memory store keeps nothing at rest.
"""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from adapters.sql.database import create_sessionmaker
from adapters.sql.models import TelephonyConfigRow
from adapters.sql.repositories import SqlOrganizationRepository, SqlTelephonyConfigRepository
from adapters.system.crypto import FernetCredentialCipher
from application.ports.credentials import UndecryptableCredentialError
from domain.agents import Organization
from domain.telephony import Provider, TelephonyConfig
from tests.contract.conftest import CONTRACT_SECRET_KEY


@pytest.fixture(
    params=[
        pytest.param("sqlite", marks=pytest.mark.sqlite),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def sessions(request: pytest.FixtureRequest) -> async_sessionmaker[AsyncSession]:
    engine: AsyncEngine = request.getfixturevalue(f"{request.param}_engines")[0]
    return create_sessionmaker(engine)


async def _organization_id(sessions: async_sessionmaker[AsyncSession]) -> int:
    organization = await SqlOrganizationRepository(sessions).add(Organization(name="at-rest"))
    assert organization.id is not None
    return organization.id


async def _stored_token(sessions: async_sessionmaker[AsyncSession], config_id: int) -> str:
    async with sessions() as session:
        stored = await session.scalar(
            select(TelephonyConfigRow.bearer_token).where(TelephonyConfigRow.id == config_id)
        )
    assert stored is not None
    return stored


async def test_the_row_holds_ciphertext_only(sessions: async_sessionmaker[AsyncSession]) -> None:
    token = "cx-" + secrets.token_urlsafe(24)
    repository = SqlTelephonyConfigRepository(sessions, FernetCredentialCipher(CONTRACT_SECRET_KEY))
    config = await repository.add(TelephonyConfig.cloudonix(await _organization_id(sessions), "acme", token))
    assert config.id is not None

    stored = await _stored_token(sessions, config.id)

    assert stored.startswith("v1:")
    assert token not in stored
    assert FernetCredentialCipher(CONTRACT_SECRET_KEY).decrypt(stored) == token


async def test_a_token_stored_in_clear_before_encryption_is_still_read(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    organization_id = await _organization_id(sessions)
    async with sessions() as session, session.begin():
        await session.execute(
            insert(TelephonyConfigRow).values(
                organization_id=organization_id,
                provider="cloudonix",
                domain_id="legacy.cloudonix.net",
                name="legacy",
                bearer_token="legacy-plaintext-token",
            )
        )
    repository = SqlTelephonyConfigRepository(sessions, FernetCredentialCipher(CONTRACT_SECRET_KEY))

    found = await repository.find_by_domain(organization_id, Provider.CLOUDONIX, "legacy.cloudonix.net")

    assert found is not None
    assert found.bearer_token.reveal() == "legacy-plaintext-token"
    [listed] = await repository.list_for_organization(organization_id)
    assert listed.bearer_token.reveal() == "legacy-plaintext-token"


async def test_another_secret_key_cannot_read_the_tokens(sessions: async_sessionmaker[AsyncSession]) -> None:
    organization_id = await _organization_id(sessions)
    writer = SqlTelephonyConfigRepository(sessions, FernetCredentialCipher(CONTRACT_SECRET_KEY))
    await writer.add(TelephonyConfig.cloudonix(organization_id, "acme", "token"))
    reader = SqlTelephonyConfigRepository(sessions, FernetCredentialCipher("a-different-secret-key"))

    with pytest.raises(UndecryptableCredentialError):
        await reader.find_by_domain(organization_id, Provider.CLOUDONIX, "acme.cloudonix.net")


async def test_a_corrupted_ciphertext_is_a_storage_error_not_a_leak(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    organization_id = await _organization_id(sessions)
    repository = SqlTelephonyConfigRepository(sessions, FernetCredentialCipher(CONTRACT_SECRET_KEY))
    config = await repository.add(TelephonyConfig.cloudonix(organization_id, "acme", "token"))
    async with sessions() as session, session.begin():
        await session.execute(
            update(TelephonyConfigRow)
            .where(TelephonyConfigRow.id == config.id)
            .values(bearer_token="v1:garbage")
        )

    with pytest.raises(UndecryptableCredentialError) as raised:
        await repository.list_for_organization(organization_id)

    assert "garbage" not in str(raised.value)
