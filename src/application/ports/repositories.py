"""Persistence ports. Each method is one transaction: it commits before it returns.

Lookups return `X | None`. Adapters turn their library's errors into `StorageError`.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from application.ports.run_feed import RunChange
from domain.agents import Organization, User, Workflow
from domain.telephony import Provider, TelephonyConfig
from domain.workflow_run import WorkflowRun


class StorageError(Exception):
    """The store failed (connection lost, constraint violated, ...)."""


class DuplicateError(StorageError):
    """A uniqueness rule of the store refused the write."""


class OrganizationRepository(Protocol):
    @abstractmethod
    async def add(self, organization: Organization) -> Organization: ...

    @abstractmethod
    async def get(self, organization_id: int) -> Organization | None: ...

    @abstractmethod
    async def list_all(self) -> list[Organization]:
        """Every organisation, oldest first."""

    @abstractmethod
    async def add_user(self, user: User) -> User: ...

    @abstractmethod
    async def get_user(self, user_id: int) -> User | None: ...

    @abstractmethod
    async def owner_of(self, organization_id: int) -> User | None:
        """The organisation's owning user (its first), who owns agents created for it."""


class WorkflowRepository(Protocol):
    @abstractmethod
    async def add(self, workflow: Workflow) -> Workflow:
        """Store a new agent; `created_at`/`updated_at` are set by the caller."""

    @abstractmethod
    async def update(self, workflow: Workflow) -> Workflow:
        """Store a changed agent (matched by `id`); the UUID never changes."""

    @abstractmethod
    async def get_by_uuid(self, agent_uuid: UUID) -> Workflow | None: ...

    @abstractmethod
    async def list_for_organization(self, organization_id: int) -> list[Workflow]: ...


class TelephonyConfigRepository(Protocol):
    @abstractmethod
    async def add(self, config: TelephonyConfig) -> TelephonyConfig:
        """Raises `DuplicateError` for a second configuration of one domain in one organisation."""

    @abstractmethod
    async def find_by_domain(
        self, organization_id: int, provider: Provider, domain_id: str
    ) -> TelephonyConfig | None:
        """The configuration of `domain_id` (normalised) inside `organization_id` only."""

    @abstractmethod
    async def list_for_organization(self, organization_id: int) -> list[TelephonyConfig]: ...

    @abstractmethod
    async def delete(self, organization_id: int, config_id: int) -> bool: ...


class WorkflowRunRepository(Protocol):
    @abstractmethod
    async def add(self, run: WorkflowRun) -> WorkflowRun:
        """Store a freshly minted run; sets and returns its `id`."""

    @abstractmethod
    async def save(self, run: WorkflowRun) -> None:
        """Store the run's current state (matched by `id`). An ended run whose agent has a
        `webhook_url` gets its webhook outbox row in the same transaction (once)."""

    @abstractmethod
    async def save_end(self, run: WorkflowRun) -> None:
        """Store only how the run ended (state, times, end reason, close, disposition): what must
        be stored even when the rest of the run (caller-supplied context, transcript) cannot be.
        Its webhook outbox row too, as `save`."""

    @abstractmethod
    async def save_gathered_context(self, run: WorkflowRun) -> None:
        """Store only the run's `gathered_context` (what an agent journals during the call)."""

    @abstractmethod
    async def save_recording(self, run: WorkflowRun) -> None:
        """Store only the run's `recording` (set after the run ended, e.g. repaired at a start)."""

    @abstractmethod
    async def get(self, run_id: int) -> WorkflowRun | None: ...

    @abstractmethod
    async def list_for_workflow(
        self, workflow_id: int, limit: int, before_id: int | None = None, disposition: str | None = None
    ) -> list[WorkflowRun]:
        """Newest first (by id), at most `limit`, only ids below `before_id` and only runs of
        `disposition` when given."""

    @abstractmethod
    async def seconds_used(self, user_id: int, since: datetime) -> float:
        """Call seconds of the runs of `user_id`'s agents created at or after `since`."""


@dataclass(frozen=True, slots=True)
class CallRoute:
    """What routing a call reads about its agent: the agent, its organisation, the owning user,
    and the call seconds of that user's agents since a moment (the quota's month)."""

    workflow: Workflow
    organization: Organization | None
    owner: User | None
    seconds_used: float


class CallRoutes(Protocol):
    """The routing read of each call start, in one transaction (it was four)."""

    @abstractmethod
    async def route(self, agent_uuid: UUID, since: datetime) -> CallRoute | None:
        """The agent's route, `seconds_used` counted from `since`; None for an unknown agent."""


class CallSlots(Protocol):
    """Concurrent-call slots: one per live call, leased to the instance that holds the socket.

    A slot counts while its lease is fresh; the instance renews the slots of its live calls
    (`renew`), so a slot nobody holds any more (its instance crashed, or its release or even its
    acquire could not be confirmed while the database failed) expires on its own.
    """

    @abstractmethod
    async def acquire(
        self, organization_id: int, limit: int, instance_id: str, now: datetime, ttl_seconds: float
    ) -> str | None:
        """Take a slot if the organisation has fewer than `limit` live ones (atomically)."""

    @abstractmethod
    async def release(self, slot_id: str) -> None: ...

    @abstractmethod
    async def renew(self, slot_ids: Collection[str], now: datetime, ttl_seconds: float) -> None:
        """Extend these slots' leases to `now + ttl_seconds`."""

    @abstractmethod
    async def live_count(self, organization_id: int, now: datetime) -> int: ...


@dataclass(frozen=True, slots=True)
class Reaped:
    """What one reaping did: dead instances removed, their live runs ended, their slots freed, and
    the reaper's own runs that no call held any more ended; `ended` says which runs it ended (both
    kinds), as the changes to publish."""

    instances: int = 0
    runs: int = 0
    slots: int = 0
    abandoned: int = 0
    ended: tuple[RunChange, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.instances or self.runs or self.slots or self.abandoned)


@dataclass(frozen=True, slots=True)
class Reaper:
    """The live instance that reaps, and the runs its calls hold.

    Its own live runs that no call holds (a run whose insert committed after the call had given up
    on it, when the database answered too late) are ended too, once older than the TTL. With
    `previous_life`, the other instances registered under its `name` (its life before a restart)
    are ended at once, without waiting for the TTL.
    """

    instance_id: str
    name: str
    held_runs: frozenset[int] = frozenset()
    previous_life: bool = False


class Instances(Protocol):
    """The service's instances as rows in the shared database.

    Each instance registers at start and heartbeats; one whose heartbeat is older than the TTL is
    dead, and any instance may reap it: its live runs end `failed`/`instance_lost` (ended when it
    was last seen), its slots are freed, its row goes. Reaping is safe to run on every instance at
    the same moment: each dead instance, and each run, is ended exactly once.
    """

    @abstractmethod
    async def register(self, instance_id: str, name: str, now: datetime) -> None:
        """Insert (or refresh) this instance's row; `name` says where it runs (host:port)."""

    @abstractmethod
    async def heartbeat(self, instance_id: str, now: datetime) -> bool:
        """Renew this instance's row; False when it is gone (reaped): register it again."""

    @abstractmethod
    async def reap(self, now: datetime, ttl_seconds: float, reaper: Reaper | None = None) -> Reaped:
        """End the instances silent for longer than `ttl_seconds`, and the running runs of no
        known instance that started longer ago than that; with `reaper`, also what it says.
        Each run it ends gets its webhook outbox row in the same transaction, as `save_end`."""

    @abstractmethod
    async def deregister(self, instance_id: str) -> None:
        """Remove this instance's row at a clean shutdown (after its calls ended)."""
