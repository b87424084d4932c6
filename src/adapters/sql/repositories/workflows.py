"""Agents (workflows)."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import select, update

from adapters.sql.models import WorkflowRow
from adapters.sql.repositories.base import SqlAdapter
from adapters.sql.repositories.mappers import workflow_from_row, workflow_values
from application.ports.repositories import StorageError, WorkflowRepository
from domain.agents import Workflow


class SqlWorkflowRepository(SqlAdapter, WorkflowRepository):
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
