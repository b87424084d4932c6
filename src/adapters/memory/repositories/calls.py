"""What a call needs before it starts: its route (agent, organisation, owner, minutes used this
month) and a concurrency slot."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from adapters.memory.repositories.organizations import InMemoryOrganizationRepository
from adapters.memory.repositories.runs import InMemoryWorkflowRunRepository
from adapters.memory.repositories.times import utc
from adapters.memory.repositories.workflows import InMemoryWorkflowRepository
from application.ports.repositories import CallRoute, CallRoutes, CallSlots


class InMemoryCallRoutes(CallRoutes):
    def __init__(
        self,
        organizations: InMemoryOrganizationRepository,
        workflows: InMemoryWorkflowRepository,
        runs: InMemoryWorkflowRunRepository,
    ) -> None:
        self._organizations = organizations
        self._workflows = workflows
        self._runs = runs

    async def route(self, agent_uuid: UUID, since: datetime) -> CallRoute | None:
        workflow = await self._workflows.get_by_uuid(agent_uuid)
        if workflow is None:
            return None
        return CallRoute(
            workflow=workflow,
            organization=await self._organizations.get(workflow.organization_id),
            owner=await self._organizations.get_user(workflow.user_id),
            seconds_used=await self._runs.seconds_used(workflow.user_id, since),
        )


@dataclasses.dataclass(slots=True)
class _Slot:
    organization_id: int
    instance_id: str
    expires_at: datetime


class InMemoryCallSlots(CallSlots):
    def __init__(self, organizations: InMemoryOrganizationRepository) -> None:
        self._organizations = organizations
        self._slots: dict[str, _Slot] = {}

    async def acquire(
        self, organization_id: int, limit: int, instance_id: str, now: datetime, ttl_seconds: float
    ) -> str | None:
        now = utc(now)
        if not self._organizations.has_organization(organization_id):
            return None
        expired = [
            slot_id
            for slot_id, slot in self._slots.items()
            if slot.organization_id == organization_id and slot.expires_at <= now
        ]
        for slot_id in expired:
            del self._slots[slot_id]
        if self._live(organization_id, now) >= limit:
            return None
        slot_id = uuid4().hex
        self._slots[slot_id] = _Slot(organization_id, instance_id, now + timedelta(seconds=ttl_seconds))
        return slot_id

    async def release(self, slot_id: str) -> None:
        self._slots.pop(slot_id, None)

    async def renew(self, slot_ids: Collection[str], now: datetime, ttl_seconds: float) -> None:
        expires_at = utc(now) + timedelta(seconds=ttl_seconds)
        for slot_id in slot_ids:
            if (slot := self._slots.get(slot_id)) is not None:
                slot.expires_at = expires_at

    async def live_count(self, organization_id: int, now: datetime) -> int:
        return self._live(organization_id, utc(now))

    def drop_instances(self, instance_ids: set[str]) -> int:
        """Free the slots of these instances; returns how many."""
        dropped = [slot_id for slot_id, slot in self._slots.items() if slot.instance_id in instance_ids]
        for slot_id in dropped:
            del self._slots[slot_id]
        return len(dropped)

    def _live(self, organization_id: int, now: datetime) -> int:
        return sum(
            1
            for slot in self._slots.values()
            if slot.organization_id == organization_id and slot.expires_at > now
        )
