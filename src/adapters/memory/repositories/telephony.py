"""Telephony configurations."""

from __future__ import annotations

import dataclasses
import itertools

from adapters.memory.repositories.organizations import InMemoryOrganizationRepository
from application.ports.repositories import DuplicateError, TelephonyConfigRepository
from domain.telephony import Provider, TelephonyConfig


class InMemoryTelephonyConfigRepository(TelephonyConfigRepository):
    def __init__(self, organizations: InMemoryOrganizationRepository) -> None:
        self._organizations = organizations
        self._configs: dict[int, TelephonyConfig] = {}
        self._ids = itertools.count(1)

    async def add(self, config: TelephonyConfig) -> TelephonyConfig:
        self._organizations.require_organization(config.organization_id)
        if self._find(config.organization_id, config.provider, config.domain_id) is not None:
            raise DuplicateError(f"{config.provider} domain {config.domain_id} is configured already")
        # Every field is immutable (SecretStr included), so a shallow copy is a full one.
        config_id = next(self._ids)
        stored = dataclasses.replace(config, id=config_id)
        self._configs[config_id] = stored
        return dataclasses.replace(stored)

    async def find_by_domain(
        self, organization_id: int, provider: Provider, domain_id: str
    ) -> TelephonyConfig | None:
        stored = self._find(organization_id, provider, domain_id)
        return None if stored is None else dataclasses.replace(stored)

    async def list_for_organization(self, organization_id: int) -> list[TelephonyConfig]:
        return [
            dataclasses.replace(stored)
            for _, stored in sorted(self._configs.items())
            if stored.organization_id == organization_id
        ]

    async def delete(self, organization_id: int, config_id: int) -> bool:
        stored = self._configs.get(config_id)
        if stored is None or stored.organization_id != organization_id:
            return False
        del self._configs[config_id]
        return True

    def _find(self, organization_id: int, provider: Provider, domain_id: str) -> TelephonyConfig | None:
        for stored in self._configs.values():
            if (stored.organization_id, stored.provider, stored.domain_id) == (
                organization_id,
                provider,
                domain_id,
            ):
                return stored
        return None
