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
