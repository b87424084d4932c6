"""Organisations, their users, and their API keys (stored only as hashes)."""

from __future__ import annotations

import dataclasses
import itertools

from application.ports.api_keys import ApiKeyRepository
from application.ports.repositories import DuplicateError, OrganizationRepository, StorageError
from domain.agents import Organization, User


class InMemoryOrganizationRepository(OrganizationRepository):
    def __init__(self) -> None:
        self._organizations: dict[int, Organization] = {}
        self._users: dict[int, User] = {}
        self._organization_ids = itertools.count(1)
        self._user_ids = itertools.count(1)

    async def add(self, organization: Organization) -> Organization:
        organization_id = next(self._organization_ids)
        stored = dataclasses.replace(organization, id=organization_id)
        self._organizations[organization_id] = stored
        return dataclasses.replace(stored)

    async def get(self, organization_id: int) -> Organization | None:
        stored = self._organizations.get(organization_id)
        return None if stored is None else dataclasses.replace(stored)

    async def list_all(self) -> list[Organization]:
        return [dataclasses.replace(stored) for _, stored in sorted(self._organizations.items())]

    async def add_user(self, user: User) -> User:
        self.require_organization(user.organization_id)
        user_id = next(self._user_ids)
        stored = dataclasses.replace(user, id=user_id)
        self._users[user_id] = stored
        return dataclasses.replace(stored)

    async def get_user(self, user_id: int) -> User | None:
        stored = self._users.get(user_id)
        return None if stored is None else dataclasses.replace(stored)

    async def owner_of(self, organization_id: int) -> User | None:
        """The organisation's first user: the one created with it."""
        for _, stored in sorted(self._users.items()):
            if stored.organization_id == organization_id:
                return dataclasses.replace(stored)
        return None

    def has_organization(self, organization_id: int) -> bool:
        return organization_id in self._organizations

    def require_organization(self, organization_id: int) -> None:
        if organization_id not in self._organizations:
            raise StorageError(f"no organization with id {organization_id}")

    def require_user(self, user_id: int) -> None:
        if user_id not in self._users:
            raise StorageError(f"no user with id {user_id}")


class InMemoryApiKeyRepository(ApiKeyRepository):
    def __init__(self, organizations: InMemoryOrganizationRepository | None = None) -> None:
        self._organizations = organizations
        self._owners: dict[str, int] = {}

    async def add(self, organization_id: int, key_hash: str) -> None:
        if self._organizations is not None:
            self._organizations.require_organization(organization_id)
        if key_hash in self._owners:
            raise DuplicateError("api key exists")
        self._owners[key_hash] = organization_id

    async def organization_for(self, key_hash: str) -> int | None:
        return self._owners.get(key_hash)

    async def replace(self, organization_id: int, key_hash: str) -> int:
        if self._organizations is not None:
            self._organizations.require_organization(organization_id)
        owner = self._owners.get(key_hash)
        if owner is not None and owner != organization_id:
            raise DuplicateError("api key exists")
        revoked = [h for h, owner in self._owners.items() if owner == organization_id]
        for old in revoked:
            del self._owners[old]
        self._owners[key_hash] = organization_id
        return len(revoked)
