"""SQL implementations of the persistence ports (SQLite via aiosqlite, PostgreSQL via asyncpg).

Each adapter is built from an `async_sessionmaker` and opens one short session and transaction
per method, so no connection is held between calls. Writes are single statements where possible:
on SQLite a transaction that reads first and writes later can fail with "database is locked" when
another connection wrote in between, while one that starts with its write waits for the lock.
SQLAlchemy errors leave an adapter as `StorageError` (`DuplicateError` for a uniqueness rule).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sqlite3
from collections.abc import AsyncIterator, Callable, Collection
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast
from uuid import UUID, uuid4

import asyncpg
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import CursorResult, Executable, delete, func, insert, literal, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from adapters.sql.database import TRANSACTION_TIMEOUT
from adapters.sql.models import (
    ApiKeyRow,
    CallSlotRow,
    InstanceRow,
    OrganizationRow,
    TelephonyConfigRow,
    UserRow,
    WorkflowRow,
    WorkflowRunRow,
)
from application.ports.api_keys import ApiKeyRepository
from application.ports.credentials import CredentialCipher
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
from domain.agents import AgentDefinition, Organization, User, Workflow, WorkflowStatus
from domain.close_policy import ABANDONED_CLOSE, INSTANCE_LOST_CLOSE
from domain.telephony import Provider, SecretStr, TelephonyConfig
from domain.workflow_run import EndReason, RunState, WorkflowRun

__all__ = (
    "SqlCallRoutes",
    "SqlCallSlots",
    "SqlInstances",
    "SqlOrganizationRepository",
    "SqlTelephonyConfigRepository",
    "SqlWorkflowRepository",
    "SqlWorkflowRunRepository",
)

_PG_UNIQUE_VIOLATION = "23505"
_Row = TypeVar("_Row")
_Entity = TypeVar("_Entity")
_SQLITE_UNIQUE_VIOLATIONS = frozenset({"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"})


# Mappers: domain -> column values, row -> domain ---------------------------------------------


def organization_values(organization: Organization) -> dict[str, Any]:
    return {"name": organization.name, "max_concurrent_calls": organization.max_concurrent_calls}


def organization_from_row(row: OrganizationRow) -> Organization:
    return Organization(name=row.name, max_concurrent_calls=row.max_concurrent_calls, id=row.id)


def user_values(user: User) -> dict[str, Any]:
    return {
        "organization_id": user.organization_id,
        "name": user.name,
        "monthly_minutes": user.monthly_minutes,
    }


def user_from_row(row: UserRow) -> User:
    return User(
        organization_id=row.organization_id,
        monthly_minutes=row.monthly_minutes,
        name=row.name,
        id=row.id,
    )


def workflow_values(workflow: Workflow) -> dict[str, Any]:
    return {
        "uuid": workflow.uuid,
        "organization_id": workflow.organization_id,
        "user_id": workflow.user_id,
        "name": workflow.name,
        "status": str(workflow.status),
        "definition": workflow.definition.to_dict(),
        "template_variables": workflow.template_variables,
        "created_at": workflow.created_at,
        "updated_at": workflow.updated_at,
    }


def workflow_from_row(row: WorkflowRow) -> Workflow:
    return Workflow(
        uuid=row.uuid,
        organization_id=row.organization_id,
        user_id=row.user_id,
        name=row.name,
        definition=AgentDefinition.from_dict(row.definition),
        status=WorkflowStatus(row.status),
        template_variables=row.template_variables,
        created_at=row.created_at,
        updated_at=row.updated_at,
        id=row.id,
    )


def telephony_config_values(config: TelephonyConfig, cipher: CredentialCipher) -> dict[str, Any]:
    """The row's values; the bearer token is stored encrypted (`cipher`), never in clear."""
    return {
        "organization_id": config.organization_id,
        "provider": str(config.provider),
        "domain_id": config.domain_id,
        "name": config.name,
        "bearer_token": cipher.encrypt(config.bearer_token.reveal()),
    }


def telephony_config_from_row(row: TelephonyConfigRow, cipher: CredentialCipher) -> TelephonyConfig:
    return TelephonyConfig(
        organization_id=row.organization_id,
        provider=Provider(row.provider),
        domain_id=row.domain_id,
        bearer_token=SecretStr(cipher.decrypt(row.bearer_token)),
        name=row.name,
        id=row.id,
    )


def workflow_run_values(run: WorkflowRun) -> dict[str, Any]:
    return {
        "name": run.name,
        "workflow_id": run.workflow_id,
        "agent_uuid": run.agent_uuid,
        "state": str(run.state),
        "call_type": run.call_type,
        "mode": run.mode,
        "initial_context": run.initial_context,
        "gathered_context": run.gathered_context,
        "logs": run.logs,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "duration_seconds": run.duration_seconds,
        "end_reason": run.end_reason,
        "close_code": run.close_code,
        "close_reason": run.close_reason,
        "instance_id": run.instance_id,
    }


def workflow_run_from_row(row: WorkflowRunRow) -> WorkflowRun:
    return WorkflowRun(
        name=row.name,
        workflow_id=row.workflow_id,
        agent_uuid=row.agent_uuid,
        mode=row.mode,
        created_at=row.created_at,
        call_type=row.call_type,
        state=RunState(row.state),
        initial_context=row.initial_context,
        gathered_context=row.gathered_context,
        logs=row.logs,
        started_at=row.started_at,
        ended_at=row.ended_at,
        duration_seconds=row.duration_seconds,
        end_reason=row.end_reason,
        close_code=row.close_code,
        close_reason=row.close_reason,
        instance_id=row.instance_id,
        id=row.id,
    )


def _end_values(run: WorkflowRun) -> dict[str, Any]:
    """The columns that say how a run ended."""
    return {
        "state": str(run.state),
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "duration_seconds": run.duration_seconds,
        "end_reason": run.end_reason,
        "close_code": run.close_code,
        "close_reason": run.close_reason,
    }


# Sessions and errors ----------------------------------------------------------------------------


# What the drivers raise unwrapped: connection-time errors (SQLAlchemy 2.0 does not wrap asyncpg's
# errors while connecting), and OSError when the server cannot be reached at all.
_STORAGE_FAILURES: tuple[type[Exception], ...] = (
    SQLAlchemyError,
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    sqlite3.Error,
)


class _SqlAdapter:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        bind = sessions.kw.get("bind")
        self._dialect: str | None = None if bind is None else bind.dialect.name
        self._row_locks = self._dialect == "postgresql"  # `SELECT ... FOR UPDATE` means something
        self._timeout = _transaction_timeout(sessions, self._dialect)

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncSession]:
        """A fresh session in a transaction that commits on exit; library errors become ours.

        With a transaction timeout (PostgreSQL), the whole transaction -- pool wait, connect,
        statements, commit -- must finish within it, else `StorageError`. The connection it was
        cancelled on is invalidated by SQLAlchemy and never returns to the pool.
        """
        try:
            async with asyncio.timeout(self._timeout), self._sessions() as session, session.begin():
                yield session
        except TimeoutError as exc:  # ours above, or asyncpg's connect/command timeout
            raise StorageError("TimeoutError: the database did not answer in time") from exc
        except IntegrityError as exc:
            if _is_unique_violation(exc):
                raise DuplicateError(_describe(exc)) from exc
            raise StorageError(_describe(exc)) from exc
        except _STORAGE_FAILURES as exc:
            raise StorageError(_describe(exc)) from exc

    async def _insert(self, row: _Row, stored: Callable[[_Row], _Entity]) -> _Entity:
        """Insert `row` in a transaction of its own; `stored(row)` once its id is known."""
        async with self._transaction() as session:
            session.add(row)
            await session.flush()
            return stored(row)


def _transaction_timeout(sessions: async_sessionmaker[AsyncSession], dialect: str | None) -> float | None:
    """The bound set by `create_sessionmaker`; none on SQLite, whose waits are local and whose
    driver thread would go on with a cancelled statement anyway."""
    if dialect is None or dialect == "sqlite":
        return None
    timeout = sessions.kw.get("info", {}).get(TRANSACTION_TIMEOUT)
    return float(timeout) if timeout is not None else None


def _is_unique_violation(exc: IntegrityError) -> bool:
    orig = exc.orig
    if getattr(orig, "sqlstate", None) == _PG_UNIQUE_VIOLATION:
        return True
    return getattr(orig, "sqlite_errorname", None) in _SQLITE_UNIQUE_VIOLATIONS


def _describe(exc: BaseException) -> str:
    """The driver's message, without the statement (parameters may hold credentials)."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    return f"{type(exc).__name__}: {cause}".splitlines()[0]


async def _rowcount(session: AsyncSession, statement: Executable) -> int:
    result = cast("CursorResult[Any]", await session.execute(statement))
    return result.rowcount


# Repositories ------------------------------------------------------------------------------------


class SqlOrganizationRepository(_SqlAdapter, OrganizationRepository):
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


class SqlWorkflowRepository(_SqlAdapter, WorkflowRepository):
    async def add(self, workflow: Workflow) -> Workflow:
        return await self._insert(WorkflowRow(**workflow_values(workflow)), workflow_from_row)

    async def update(self, workflow: Workflow) -> Workflow:
        workflow_id = workflow.stored_id
        values = workflow_values(workflow)
        del values["uuid"]  # an agent's UUID never changes
        async with self._transaction() as session:
            row = await session.scalar(
                update(WorkflowRow).where(WorkflowRow.id == workflow_id).values(values).returning(WorkflowRow)
            )
            if row is None:
                raise StorageError(f"no workflow with id {workflow_id}")
            return workflow_from_row(row)

    async def get_by_uuid(self, agent_uuid: UUID) -> Workflow | None:
        async with self._transaction() as session:
            row = await session.scalar(select(WorkflowRow).where(WorkflowRow.uuid == agent_uuid))
            return None if row is None else workflow_from_row(row)

    async def list_for_organization(self, organization_id: int) -> list[Workflow]:
        async with self._transaction() as session:
            rows = await session.scalars(
                select(WorkflowRow)
                .where(WorkflowRow.organization_id == organization_id)
                .order_by(WorkflowRow.id)
            )
            return [workflow_from_row(row) for row in rows]


class SqlTelephonyConfigRepository(_SqlAdapter, TelephonyConfigRepository):
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
            deleted = await _rowcount(
                session,
                delete(TelephonyConfigRow).where(
                    TelephonyConfigRow.id == config_id, TelephonyConfigRow.organization_id == organization_id
                ),
            )
            return deleted > 0


class SqlWorkflowRunRepository(_SqlAdapter, WorkflowRunRepository):
    async def add(self, run: WorkflowRun) -> WorkflowRun:
        return await self._insert(WorkflowRunRow(**workflow_run_values(run)), workflow_run_from_row)

    async def save(self, run: WorkflowRun) -> None:
        await self._update(run, workflow_run_values(run))

    async def save_end(self, run: WorkflowRun) -> None:
        await self._update(run, _end_values(run))

    async def save_gathered_context(self, run: WorkflowRun) -> None:
        """One column, not the whole row: the journal writes a few times a turn."""
        await self._update(run, {"gathered_context": run.gathered_context})

    async def _update(self, run: WorkflowRun, values: dict[str, Any]) -> None:
        run_id = run.stored_id
        async with self._transaction() as session:
            updated = await _rowcount(
                session, update(WorkflowRunRow).where(WorkflowRunRow.id == run_id).values(values)
            )
            if updated == 0:
                raise StorageError(f"no run with id {run_id}")

    async def get(self, run_id: int) -> WorkflowRun | None:
        async with self._transaction() as session:
            row = await session.get(WorkflowRunRow, run_id)
            return None if row is None else workflow_run_from_row(row)

    async def list_for_workflow(
        self, workflow_id: int, limit: int, before_id: int | None = None
    ) -> list[WorkflowRun]:
        query = select(WorkflowRunRow).where(WorkflowRunRow.workflow_id == workflow_id)
        if before_id is not None:
            query = query.where(WorkflowRunRow.id < before_id)
        async with self._transaction() as session:
            rows = await session.scalars(query.order_by(WorkflowRunRow.id.desc()).limit(limit))
            return [workflow_run_from_row(row) for row in rows]

    async def seconds_used(self, user_id: int, since: datetime) -> float:
        query = (
            select(func.coalesce(func.sum(WorkflowRunRow.duration_seconds), 0.0))
            .select_from(WorkflowRunRow)
            .join(WorkflowRow, WorkflowRow.id == WorkflowRunRow.workflow_id)
            .where(WorkflowRow.user_id == user_id, WorkflowRunRow.created_at >= since)
        )
        async with self._transaction() as session:
            return float(await session.scalar(query) or 0.0)


class SqlCallRoutes(_SqlAdapter, CallRoutes):
    """The agent, its organisation and owner, and the owner's seconds this month: one statement."""

    async def route(self, agent_uuid: UUID, since: datetime) -> CallRoute | None:
        owned = aliased(WorkflowRow)  # the owner's agents, the routed one among them
        used = (
            select(func.coalesce(func.sum(WorkflowRunRow.duration_seconds), 0.0))
            .select_from(WorkflowRunRow)
            .join(owned, owned.id == WorkflowRunRow.workflow_id)
            .where(owned.user_id == WorkflowRow.user_id, WorkflowRunRow.created_at >= since)
            .scalar_subquery()
        )
        query = (
            select(WorkflowRow, OrganizationRow, UserRow, used)
            .outerjoin(OrganizationRow, OrganizationRow.id == WorkflowRow.organization_id)
            .outerjoin(UserRow, UserRow.id == WorkflowRow.user_id)
            .where(WorkflowRow.uuid == agent_uuid)
        )
        async with self._transaction() as session:
            found = (await session.execute(query)).first()
            if found is None:
                return None
            workflow, organization, owner, seconds = found
            return CallRoute(
                workflow=workflow_from_row(workflow),
                organization=None if organization is None else organization_from_row(organization),
                owner=None if owner is None else user_from_row(owner),
                seconds_used=float(seconds or 0.0),
            )


class SqlCallSlots(_SqlAdapter, CallSlots):
    """Slot rows under a per-organisation lock.

    PostgreSQL: the organisation's row is locked (`FOR NO KEY UPDATE`, which still lets other
    transactions insert rows that reference it) for the rest of the transaction, so the count
    and the insert of concurrent acquires for one organisation never interleave.
    SQLite: one process; acquires are serialised by an `asyncio.Lock`, and the transaction
    begins with a write, which takes SQLite's database lock before anything is counted.
    Expired slots of the organisation are deleted on the way; an unknown organisation gets none.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        super().__init__(sessions)
        self._local_lock = asyncio.Lock()

    async def acquire(
        self, organization_id: int, limit: int, instance_id: str, now: datetime, ttl_seconds: float
    ) -> str | None:
        slot_id = uuid4().hex
        lock: contextlib.AbstractAsyncContextManager[Any] = (
            contextlib.nullcontext() if self._row_locks else self._local_lock
        )
        async with lock, self._transaction() as session:
            if self._row_locks:
                await session.execute(
                    select(OrganizationRow.id)
                    .where(OrganizationRow.id == organization_id)
                    .with_for_update(key_share=True)
                )
            # Expired leases go first (on SQLite, this write is what takes the database lock).
            await session.execute(
                delete(CallSlotRow).where(
                    CallSlotRow.organization_id == organization_id, CallSlotRow.expires_at <= now
                )
            )
            live = (
                select(func.count())
                .select_from(CallSlotRow)
                .where(CallSlotRow.organization_id == organization_id, CallSlotRow.expires_at > now)
                .scalar_subquery()
            )
            # One conditional statement: the slot goes in only if the organisation exists and
            # has fewer than `limit` live slots at this point of the (locked) transaction.
            candidate = select(
                literal(slot_id),
                OrganizationRow.id,
                literal(instance_id),
                literal(now, DateTimeUTC()),
                literal(now + timedelta(seconds=ttl_seconds), DateTimeUTC()),
            ).where(OrganizationRow.id == organization_id, live < limit)
            inserted = await _rowcount(
                session,
                insert(CallSlotRow).from_select(
                    ["id", "organization_id", "instance_id", "acquired_at", "expires_at"], candidate
                ),
            )
        return slot_id if inserted == 1 else None

    async def release(self, slot_id: str) -> None:
        async with self._transaction() as session:
            await session.execute(delete(CallSlotRow).where(CallSlotRow.id == slot_id))

    async def renew(self, slot_ids: Collection[str], now: datetime, ttl_seconds: float) -> None:
        if not slot_ids:
            return
        async with self._transaction() as session:
            await session.execute(
                update(CallSlotRow)
                .where(CallSlotRow.id.in_(list(slot_ids)))
                .values(expires_at=now + timedelta(seconds=ttl_seconds))
            )

    async def live_count(self, organization_id: int, now: datetime) -> int:
        async with self._transaction() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(CallSlotRow)
                .where(CallSlotRow.organization_id == organization_id, CallSlotRow.expires_at > now)
            )
            return int(count or 0)


_LIVE_STATES = (str(RunState.INITIALIZED), str(RunState.RUNNING))


class SqlInstances(_SqlAdapter, Instances):
    """Instance rows; reaping locks the dead ones (`FOR UPDATE SKIP LOCKED` on PostgreSQL), so
    reapers on several instances at once share the work instead of repeating it, and each run is
    ended by a conditional update (only while still live): exactly once whatever the interleaving.
    SQLite is one process, where the transaction's write lock serialises reapers."""

    async def register(self, instance_id: str, name: str, now: datetime) -> None:
        async with self._transaction() as session:
            await session.execute(delete(InstanceRow).where(InstanceRow.id == instance_id))
            session.add(InstanceRow(id=instance_id, name=name, started_at=now, heartbeat_at=now))

    async def heartbeat(self, instance_id: str, now: datetime) -> bool:
        async with self._transaction() as session:
            renewed = await _rowcount(
                session, update(InstanceRow).where(InstanceRow.id == instance_id).values(heartbeat_at=now)
            )
            return renewed > 0

    async def deregister(self, instance_id: str) -> None:
        async with self._transaction() as session:
            await session.execute(delete(InstanceRow).where(InstanceRow.id == instance_id))

    async def reap(self, now: datetime, ttl_seconds: float, reaper: Reaper | None = None) -> Reaped:
        silent_since = now - timedelta(seconds=ttl_seconds)
        dead_rule = InstanceRow.heartbeat_at < silent_since
        if reaper is not None and reaper.previous_life:
            dead_rule |= (InstanceRow.name == reaper.name) & (InstanceRow.id != reaper.instance_id)
        dead_ids = select(InstanceRow.id).where(dead_rule)
        if self._row_locks:  # another reaper's rows are its to end
            dead_ids = dead_ids.with_for_update(skip_locked=True)
        began = func.coalesce(WorkflowRunRow.started_at, WorkflowRunRow.created_at)
        live = WorkflowRunRow.state.in_(_LIVE_STATES)
        async with self._transaction() as session:
            # The delete comes first: on SQLite it takes the database's write lock, so a reaper in
            # another process waits and then finds nothing left to reap.
            dead = dict(
                (
                    await session.execute(
                        delete(InstanceRow)
                        .where(InstanceRow.id.in_(dead_ids))
                        .returning(InstanceRow.id, InstanceRow.heartbeat_at)
                    )
                )
                .tuples()
                .all()
            )
            lost = list(
                await session.scalars(
                    select(WorkflowRunRow).where(
                        live,
                        WorkflowRunRow.instance_id.is_(None)
                        | WorkflowRunRow.instance_id.not_in(select(InstanceRow.id))
                        | WorkflowRunRow.instance_id.in_(dead),
                        (began < silent_since) | WorkflowRunRow.instance_id.in_(dead),
                    )
                )
            )
            ended = 0
            for row in lost:
                run = workflow_run_from_row(row)
                seen = dead.get(run.instance_id or "", now)
                run.fail(max(_began(run), min(seen, now)), EndReason.INSTANCE_LOST, INSTANCE_LOST_CLOSE)
                ended += await _end_if_live(session, run)
            abandoned = 0
            if reaper is not None:
                own = select(WorkflowRunRow).where(
                    live,
                    WorkflowRunRow.instance_id == reaper.instance_id,
                    WorkflowRunRow.id.not_in(list(reaper.held_runs)),
                    began < silent_since,
                )
                for row in await session.scalars(own):
                    run = workflow_run_from_row(row)
                    run.fail(now, EndReason.ERROR, ABANDONED_CLOSE)
                    abandoned += await _end_if_live(session, run)
            slots = 0
            if dead:
                slots = await _rowcount(session, delete(CallSlotRow).where(CallSlotRow.instance_id.in_(dead)))
            return Reaped(instances=len(dead), runs=ended, slots=slots, abandoned=abandoned)


def _began(run: WorkflowRun) -> datetime:
    return run.started_at or run.created_at


async def _end_if_live(session: AsyncSession, run: WorkflowRun) -> int:
    """Store how `run` ended, unless it has ended meanwhile (another reaper, its own call): 1 or 0."""
    return await _rowcount(
        session,
        update(WorkflowRunRow)
        .where(WorkflowRunRow.id == run.id, WorkflowRunRow.state.in_(_LIVE_STATES))
        .values(_end_values(run)),
    )


class SqlApiKeyRepository(_SqlAdapter, ApiKeyRepository):
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
            revoked = await _rowcount(
                session, delete(ApiKeyRow).where(ApiKeyRow.organization_id == organization_id)
            )
            session.add(
                ApiKeyRow(organization_id=organization_id, key_hash=key_hash, created_at=datetime.now(UTC))
            )
            await session.flush()
            return revoked
