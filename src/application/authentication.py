"""Who is calling the management API: an organisation, identified by one of its API keys; and
the rotation of those keys."""

from __future__ import annotations

from dataclasses import dataclass

from application.management import NotFoundError
from application.ports.api_keys import ApiKeyRepository
from application.ports.repositories import OrganizationRepository
from domain.api_keys import hash_api_key, new_api_key

MAX_API_KEY_LENGTH = 512


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated organisation; every management query is scoped to it."""

    organization_id: int


class NotAuthenticatedError(Exception):
    """No API key was presented, or no organisation owns the one that was (HTTP 401)."""


class Authenticate:
    def __init__(self, api_keys: ApiKeyRepository) -> None:
        self._api_keys = api_keys

    async def execute(self, api_key: str | None) -> Caller:
        """The caller owning `api_key`; only its hash is looked up, never the key itself."""
        if not api_key:
            raise NotAuthenticatedError("an API key is required: Authorization: Bearer <api key>")
        if len(api_key) > MAX_API_KEY_LENGTH:
            raise NotAuthenticatedError("the API key is not valid")
        organization_id = await self._api_keys.organization_for(hash_api_key(api_key))
        if organization_id is None:
            raise NotAuthenticatedError("the API key is not valid")
        return Caller(organization_id)


@dataclass(frozen=True, slots=True)
class RotatedKey:
    api_key: str  # shown once: only its hash is stored
    revoked: int  # how many keys stopped working


class RotateApiKey:
    def __init__(self, organizations: OrganizationRepository, api_keys: ApiKeyRepository) -> None:
        self._organizations = organizations
        self._api_keys = api_keys

    async def execute(self, organization_id: int) -> RotatedKey:
        """A new key for the organisation; every key it had stops working at the same moment."""
        if await self._organizations.get(organization_id) is None:
            raise NotFoundError("organization")
        key = new_api_key()
        revoked = await self._api_keys.replace(organization_id, hash_api_key(key))
        return RotatedKey(api_key=key, revoked=revoked)
