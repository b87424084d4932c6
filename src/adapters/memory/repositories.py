"""In-memory implementations of the persistence ports, held to the SQL adapters' contract.

Objects are copied on the way in and out, so a caller never shares state with the store. The
rules a database would enforce are enforced here too: references must exist (`StorageError`),
uniqueness (`DuplicateError`), timezone-aware datetimes, handed back in UTC. `InMemoryStore`
wires one of each over shared state; every method runs without awaiting, so it is atomic.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from application.ports.api_keys import ApiKeyRepository
from application.ports.repositories import (
    CallRoute,
    CallRoutes,
    CallSlots,
    DuplicateError,
    Instances,
    OrganizationRepository,
    Reaped,
    Reaper,
    StorageError,
    TelephonyConfigRepository,
    WorkflowRepository,
    WorkflowRunRepository,
)
from domain.agents import Organization, User, Workflow
from domain.close_policy import ABANDONED_CLOSE, INSTANCE_LOST_CLOSE
from domain.telephony import Provider, TelephonyConfig
from domain.workflow_run import EndReason, WorkflowRun

__all__ = (
    "InMemoryCallSlots",
    "InMemoryInstances",
    "InMemoryOrganizationRepository",
    "InMemoryStore",
    "InMemoryTelephonyConfigRepository",
    "InMemoryWorkflowRepository",
    "InMemoryWorkflowRunRepository",
)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise StorageError("datetimes must be timezone-aware")
    return value.astimezone(UTC)


def _utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value)


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


class InMemoryWorkflowRepository(WorkflowRepository):
    def __init__(self, organizations: InMemoryOrganizationRepository) -> None:
        self._organizations = organizations
        self._workflows: dict[int, Workflow] = {}
        self._ids = itertools.count(1)

    async def add(self, workflow: Workflow) -> Workflow:
        if any(stored.uuid == workflow.uuid for stored in self._workflows.values()):
            raise DuplicateError(f"an agent with uuid {workflow.uuid} exists")
        workflow_id = next(self._ids)
        stored = self._stored(workflow, workflow_id)
        self._workflows[workflow_id] = stored
        return copy.deepcopy(stored)

    async def update(self, workflow: Workflow) -> Workflow:
        workflow_id = workflow.stored_id
        current = self._workflows.get(workflow_id)
        if current is None:
            raise StorageError(f"no workflow with id {workflow_id}")
        stored = self._stored(dataclasses.replace(workflow, uuid=current.uuid), workflow_id)
        self._workflows[workflow_id] = stored
        return copy.deepcopy(stored)

    async def get_by_uuid(self, agent_uuid: UUID) -> Workflow | None:
        for stored in self._workflows.values():
            if stored.uuid == agent_uuid:
                return copy.deepcopy(stored)
        return None

    async def list_for_organization(self, organization_id: int) -> list[Workflow]:
        return [
            copy.deepcopy(stored)
            for _, stored in sorted(self._workflows.items())
            if stored.organization_id == organization_id
        ]

    def user_of(self, workflow_id: int) -> int | None:
        stored = self._workflows.get(workflow_id)
        return None if stored is None else stored.user_id

    def _stored(self, workflow: Workflow, workflow_id: int) -> Workflow:
        self._organizations.require_organization(workflow.organization_id)
        self._organizations.require_user(workflow.user_id)
        return dataclasses.replace(
            copy.deepcopy(workflow),
            id=workflow_id,
            created_at=_utc_or_none(workflow.created_at),
            updated_at=_utc_or_none(workflow.updated_at),
        )


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


class InMemoryWorkflowRunRepository(WorkflowRunRepository):
    def __init__(self, workflows: InMemoryWorkflowRepository) -> None:
        self._workflows = workflows
        self._runs: dict[int, WorkflowRun] = {}
        self._ids = itertools.count(1)

    async def add(self, run: WorkflowRun) -> WorkflowRun:
        run_id = next(self._ids)
        stored = self._stored(run, run_id)
        self._runs[run_id] = stored
        return copy.deepcopy(stored)

    async def save(self, run: WorkflowRun) -> None:
        run_id = run.stored_id
        if run_id not in self._runs:
            raise StorageError(f"no run with id {run_id}")
        self._runs[run_id] = self._stored(run, run_id)

    async def save_end(self, run: WorkflowRun) -> None:
        run_id = run.stored_id
        stored = self._runs.get(run_id)
        if stored is None:
            raise StorageError(f"no run with id {run_id}")
        stored.state = run.state
        stored.started_at = _utc_or_none(run.started_at)
        stored.ended_at = _utc_or_none(run.ended_at)
        stored.duration_seconds = run.duration_seconds
        stored.end_reason = run.end_reason
        stored.close_code = run.close_code
        stored.close_reason = run.close_reason

    async def save_gathered_context(self, run: WorkflowRun) -> None:
        run_id = run.stored_id
        if run_id not in self._runs:
            raise StorageError(f"no run with id {run_id}")
        self._runs[run_id].gathered_context = copy.deepcopy(run.gathered_context)

    def live_runs(self) -> list[WorkflowRun]:
        """The stored runs not yet terminal (the stored objects themselves, for the reaper)."""
        return [run for run in self._runs.values() if not run.state.terminal]

    async def get(self, run_id: int) -> WorkflowRun | None:
        stored = self._runs.get(run_id)
        return None if stored is None else copy.deepcopy(stored)

    async def list_for_workflow(
        self, workflow_id: int, limit: int, before_id: int | None = None
    ) -> list[WorkflowRun]:
        newest_first = sorted(self._runs.items(), reverse=True)
        matching = [
            stored
            for run_id, stored in newest_first
            if stored.workflow_id == workflow_id and (before_id is None or run_id < before_id)
        ]
        return [copy.deepcopy(stored) for stored in matching[: max(limit, 0)]]

    async def seconds_used(self, user_id: int, since: datetime) -> float:
        since = _utc(since)
        return float(
            sum(
                stored.duration_seconds or 0.0
                for stored in self._runs.values()
                if stored.created_at >= since and self._workflows.user_of(stored.workflow_id) == user_id
            )
        )

    def _stored(self, run: WorkflowRun, run_id: int) -> WorkflowRun:
        if self._workflows.user_of(run.workflow_id) is None:
            raise StorageError(f"no workflow with id {run.workflow_id}")
        return dataclasses.replace(
            copy.deepcopy(run),
            id=run_id,
            created_at=_utc(run.created_at),
            started_at=_utc_or_none(run.started_at),
            ended_at=_utc_or_none(run.ended_at),
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
        now = _utc(now)
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
        expires_at = _utc(now) + timedelta(seconds=ttl_seconds)
        for slot_id in slot_ids:
            if (slot := self._slots.get(slot_id)) is not None:
                slot.expires_at = expires_at

    async def live_count(self, organization_id: int, now: datetime) -> int:
        return self._live(organization_id, _utc(now))

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


@dataclasses.dataclass(slots=True)
class _Instance:
    name: str
    heartbeat_at: datetime


class InMemoryInstances(Instances):
    def __init__(self, runs: InMemoryWorkflowRunRepository, slots: InMemoryCallSlots) -> None:
        self._runs = runs
        self._slots = slots
        self._instances: dict[str, _Instance] = {}

    async def register(self, instance_id: str, name: str, now: datetime) -> None:
        self._instances[instance_id] = _Instance(name, _utc(now))

    async def heartbeat(self, instance_id: str, now: datetime) -> bool:
        instance = self._instances.get(instance_id)
        if instance is None:
            return False
        instance.heartbeat_at = _utc(now)
        return True

    async def deregister(self, instance_id: str) -> None:
        self._instances.pop(instance_id, None)

    async def reap(self, now: datetime, ttl_seconds: float, reaper: Reaper | None = None) -> Reaped:
        now = _utc(now)
        silent_since = now - timedelta(seconds=ttl_seconds)
        previous_life = reaper if reaper is not None and reaper.previous_life else None
        dead = {
            instance_id: instance.heartbeat_at
            for instance_id, instance in self._instances.items()
            if instance.heartbeat_at < silent_since
            or (
                previous_life
                and instance.name == previous_life.name
                and instance_id != previous_life.instance_id
            )
        }
        for instance_id in dead:
            del self._instances[instance_id]
        ended = abandoned = 0
        for run in self._runs.live_runs():
            began = run.started_at or run.created_at
            if run.instance_id in dead or (run.instance_id not in self._instances and began < silent_since):
                seen = dead.get(run.instance_id or "", now)
                run.fail(max(began, min(seen, now)), EndReason.INSTANCE_LOST, INSTANCE_LOST_CLOSE)
                ended += 1
            elif (
                reaper is not None
                and run.instance_id == reaper.instance_id
                and run.id not in reaper.held_runs
                and began < silent_since
            ):
                run.fail(now, EndReason.ERROR, ABANDONED_CLOSE)
                abandoned += 1
        slots = self._slots.drop_instances(set(dead))
        return Reaped(instances=len(dead), runs=ended, slots=slots, abandoned=abandoned)


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


class InMemoryStore:
    """One adapter per port over shared state, as one database would hold it."""

    def __init__(self) -> None:
        self.organizations = InMemoryOrganizationRepository()
        self.workflows = InMemoryWorkflowRepository(self.organizations)
        self.telephony_configs = InMemoryTelephonyConfigRepository(self.organizations)
        self.runs = InMemoryWorkflowRunRepository(self.workflows)
        self.routes = InMemoryCallRoutes(self.organizations, self.workflows, self.runs)
        self.slots = InMemoryCallSlots(self.organizations)
        self.api_keys = InMemoryApiKeyRepository(self.organizations)
        self.instances = InMemoryInstances(self.runs, self.slots)
