"""API keys of organisations, stored only as hashes."""

from __future__ import annotations

from abc import abstractmethod
from typing import Protocol


class ApiKeyRepository(Protocol):
    @abstractmethod
    async def add(self, organization_id: int, key_hash: str) -> None: ...

    @abstractmethod
    async def organization_for(self, key_hash: str) -> int | None:
        """The organisation owning the key with this hash, if any."""

    @abstractmethod
    async def replace(self, organization_id: int, key_hash: str) -> int:
        """Make `key_hash` the organisation's only key, at once (every other key of it stops
        working in the same transaction); returns how many keys were revoked."""
