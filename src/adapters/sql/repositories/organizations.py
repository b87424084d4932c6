"""Organisations, their users, and their API keys (stored only as hashes)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, select

from adapters.sql.models import ApiKeyRow, OrganizationRow, UserRow
from adapters.sql.repositories.base import SqlAdapter, rowcount
from adapters.sql.repositories.mappers import (
    organization_from_row,
    organization_values,
    user_from_row,
    user_values,
)
from application.ports.api_keys import ApiKeyRepository
from application.ports.repositories import OrganizationRepository
from domain.agents import Organization, User


class SqlOrganizationRepository(SqlAdapter, OrganizationRepository):
    async def add(self, organization: Organization) -> Organization:
        return await self._insert(OrganizationRow(**organization_values(organization)), organization_from_row)

    async def get(self, organization_id: int) -> Organization | None:
        async with self._transaction() as session:
            row = await session.get(OrganizationRow, organization_id)
            return None if row is None else organization_from_row(row)

    async def list_all(self) -> list[Organization]:
        async with self._transaction() as session:
            rows = await session.scalars(select(OrganizationRow).order_by(OrganizationRow.id))
            return [organization_from_row(row) for row in rows]

    async def add_user(self, user: User) -> User:
        return await self._insert(UserRow(**user_values(user)), user_from_row)

    async def get_user(self, user_id: int) -> User | None:
        async with self._transaction() as session:
            row = await session.get(UserRow, user_id)
            return None if row is None else user_from_row(row)

    async def owner_of(self, organization_id: int) -> User | None:
        """The organisation's first user: the one created with it."""
        async with self._transaction() as session:
            row = await session.scalar(
                select(UserRow)
                .where(UserRow.organization_id == organization_id)
                .order_by(UserRow.id)
                .limit(1)
            )
            return None if row is None else user_from_row(row)


class SqlApiKeyRepository(SqlAdapter, ApiKeyRepository):
    """API keys: only their hashes are stored."""

    async def add(self, organization_id: int, key_hash: str) -> None:
        async with self._transaction() as session:
            session.add(
                ApiKeyRow(organization_id=organization_id, key_hash=key_hash, created_at=datetime.now(UTC))
            )

    async def organization_for(self, key_hash: str) -> int | None:
        async with self._transaction() as session:
            found = await session.scalar(
                select(ApiKeyRow.organization_id).where(ApiKeyRow.key_hash == key_hash)
            )
            return int(found) if found is not None else None

    async def replace(self, organization_id: int, key_hash: str) -> int:
        async with self._transaction() as session:
            revoked = await rowcount(
                session, delete(ApiKeyRow).where(ApiKeyRow.organization_id == organization_id)
            )
            session.add(
                ApiKeyRow(organization_id=organization_id, key_hash=key_hash, created_at=datetime.now(UTC))
            )
            await session.flush()
            return revoked
