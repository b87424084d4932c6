"""Telephony configurations, their bearer tokens encrypted at rest."""

from __future__ import annotations

import dataclasses

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.sql.models import TelephonyConfigRow
from adapters.sql.repositories.base import SqlAdapter, rowcount
from adapters.sql.repositories.mappers import telephony_config_from_row, telephony_config_values
from application.ports.credentials import CredentialCipher
from application.ports.repositories import TelephonyConfigRepository
from domain.telephony import Provider, TelephonyConfig


class SqlTelephonyConfigRepository(SqlAdapter, TelephonyConfigRepository):
    """Configurations with their bearer tokens encrypted at rest by `cipher`.

    Tokens stored in clear by an earlier version (no `v1:` prefix) are still read; they are
    encrypted when the configuration is written again.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], cipher: CredentialCipher) -> None:
        super().__init__(sessions)
        self._cipher = cipher

    async def add(self, config: TelephonyConfig) -> TelephonyConfig:
        row = TelephonyConfigRow(**telephony_config_values(config, self._cipher))
        return await self._insert(row, lambda row: dataclasses.replace(config, id=row.id))

    async def find_by_domain(
        self, organization_id: int, provider: Provider, domain_id: str
    ) -> TelephonyConfig | None:
        async with self._transaction() as session:
            row = await session.scalar(
                select(TelephonyConfigRow).where(
                    TelephonyConfigRow.organization_id == organization_id,
                    TelephonyConfigRow.provider == str(provider),
                    TelephonyConfigRow.domain_id == domain_id,
                )
            )
            return None if row is None else telephony_config_from_row(row, self._cipher)

    async def list_for_organization(self, organization_id: int) -> list[TelephonyConfig]:
        async with self._transaction() as session:
            rows = await session.scalars(
                select(TelephonyConfigRow)
                .where(TelephonyConfigRow.organization_id == organization_id)
                .order_by(TelephonyConfigRow.id)
            )
            return [telephony_config_from_row(row, self._cipher) for row in rows]

    async def delete(self, organization_id: int, config_id: int) -> bool:
        async with self._transaction() as session:
            deleted = await rowcount(
                session,
                delete(TelephonyConfigRow).where(
                    TelephonyConfigRow.id == config_id, TelephonyConfigRow.organization_id == organization_id
                ),
            )
            return deleted > 0
