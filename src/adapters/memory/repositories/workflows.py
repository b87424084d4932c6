"""Agents (workflows)."""

from __future__ import annotations

import copy
import dataclasses
import itertools
from uuid import UUID

from adapters.memory.repositories.organizations import InMemoryOrganizationRepository
from adapters.memory.repositories.times import utc_or_none
from application.ports.repositories import DuplicateError, StorageError, WorkflowRepository
from domain.agents import Workflow


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

    def organization_of(self, workflow_id: int) -> int | None:
        stored = self._workflows.get(workflow_id)
        return None if stored is None else stored.organization_id

    def webhook_url_of(self, workflow_id: int) -> str | None:
        stored = self._workflows.get(workflow_id)
        return None if stored is None else stored.definition.webhook_url

    def _stored(self, workflow: Workflow, workflow_id: int) -> Workflow:
        self._organizations.require_organization(workflow.organization_id)
        self._organizations.require_user(workflow.user_id)
        return dataclasses.replace(
            copy.deepcopy(workflow),
            id=workflow_id,
            created_at=utc_or_none(workflow.created_at),
            updated_at=utc_or_none(workflow.updated_at),
        )
