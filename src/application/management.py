"""Management use cases shared by the CLI and the REST API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

from application.ports.api_keys import ApiKeyRepository
from application.ports.repositories import (
    OrganizationRepository,
    TelephonyConfigRepository,
    WorkflowRepository,
    WorkflowRunRepository,
)
from application.ports.system import Clock
from domain.agents import AgentDefinition, Organization, User, Workflow, WorkflowStatus
from domain.api_keys import hash_api_key, new_api_key
from domain.telephony import TelephonyConfig
from domain.workflow_run import WorkflowRun


class NotFoundError(LookupError):
    """The object does not exist in the caller's organisation."""


@dataclass(frozen=True, slots=True)
class NewOrganization:
    organization_id: int
    user_id: int
    api_key: str


class CreateOrganization:
    def __init__(self, organizations: OrganizationRepository, api_keys: ApiKeyRepository) -> None:
        self._organizations = organizations
        self._api_keys = api_keys

    async def execute(
        self, name: str, max_concurrent_calls: int = 10, monthly_minutes: int = 1000
    ) -> NewOrganization:
        if max_concurrent_calls < 0 or monthly_minutes < 0:
            raise ValueError("limits must not be negative")
        org = await self._organizations.add(
            Organization(name=name, max_concurrent_calls=max_concurrent_calls)
        )
        assert org.id is not None  # noqa: S101 - set by the repository
        user = await self._organizations.add_user(
            User(organization_id=org.id, monthly_minutes=monthly_minutes, name=f"{name} owner")
        )
        assert user.id is not None  # noqa: S101
        key = new_api_key()
        await self._api_keys.add(org.id, hash_api_key(key))
        return NewOrganization(organization_id=org.id, user_id=user.id, api_key=key)


@dataclass(frozen=True, slots=True)
class AgentDraft:
    name: str
    definition: dict[str, Any] = field(default_factory=lambda: {"engine": "linetest"})
    status: str = WorkflowStatus.DRAFT.value
    template_variables: dict[str, Any] = field(default_factory=dict)


class CreateAgent:
    def __init__(
        self, organizations: OrganizationRepository, workflows: WorkflowRepository, clock: Clock
    ) -> None:
        self._organizations = organizations
        self._workflows = workflows
        self._clock = clock

    async def execute(self, organization_id: int, draft: AgentDraft, user_id: int | None = None) -> Workflow:
        """Raises `NotFoundError` for an unknown organisation, `ValueError` for a bad definition."""
        organization = await self._organizations.get(organization_id)
        if organization is None:
            raise NotFoundError("organization")
        definition = AgentDefinition.from_dict(draft.definition)
        owner = user_id if user_id is not None else await self._owner_of(organization_id)
        now = self._clock.now()
        return await self._workflows.add(
            Workflow(
                uuid=uuid4(),
                organization_id=organization_id,
                user_id=owner,
                name=draft.name,
                definition=definition,
                status=WorkflowStatus(draft.status),
                template_variables=dict(draft.template_variables),
                created_at=now,
                updated_at=now,
            )
        )

    async def _owner_of(self, organization_id: int) -> int:
        owner = await self._organizations.owner_of(organization_id)
        if owner is None or owner.id is None:
            raise NotFoundError("organization owner")
        return owner.id


class AddCloudonixConfiguration:
    def __init__(self, configs: TelephonyConfigRepository) -> None:
        self._configs = configs

    async def execute(
        self, organization_id: int, domain: str, bearer_token: str, name: str = ""
    ) -> TelephonyConfig:
        """Raises `ValueError` for an empty domain or token, `DuplicateError` for a repeat."""
        if not bearer_token.strip():
            raise ValueError("bearer_token must not be empty")
        return await self._configs.add(
            TelephonyConfig.cloudonix(organization_id, domain, bearer_token.strip(), name)
        )


class ListRuns:
    def __init__(self, workflows: WorkflowRepository, runs: WorkflowRunRepository) -> None:
        self._workflows = workflows
        self._runs = runs

    async def execute(
        self,
        agent_uuid: UUID,
        limit: int = 50,
        before_id: int | None = None,
        organization_id: int | None = None,
    ) -> list[WorkflowRun]:
        """Newest first. With `organization_id`, another organisation's agent is not found."""
        workflow = await self._workflows.get_by_uuid(agent_uuid)
        if (
            workflow is None
            or workflow.id is None
            or (organization_id is not None and workflow.organization_id != organization_id)
        ):
            raise NotFoundError("agent")
        return await self._runs.list_for_workflow(workflow.id, limit, before_id)
