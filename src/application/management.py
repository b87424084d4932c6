"""Management use cases shared by the CLI and the REST API."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

from application.ports.api_keys import ApiKeyRepository
from application.ports.repositories import (
    DuplicateError,
    OrganizationRepository,
    TelephonyConfigRepository,
    WorkflowRepository,
    WorkflowRunRepository,
)
from application.ports.system import Clock
from domain.agents import (
    AgentDefinition,
    InvalidDefinitionError,
    Organization,
    User,
    Workflow,
    WorkflowStatus,
)
from domain.api_keys import hash_api_key, new_api_key
from domain.disposition import Disposition
from domain.telephony import TelephonyConfig, normalize_cloudonix_domain
from domain.webhooks import HTTPS_ONLY, InvalidWebhookUrlError, WebhookPolicy
from domain.workflow_run import WorkflowRun

MAX_NAME_LENGTH = 255
MAX_TOKEN_LENGTH = 4096
MAX_RUNS_PAGE = 200
_DOMAIN_NAME = re.compile(
    r"(?=.{1,253}$)[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?)*"
)
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")  # printable ASCII without spaces: fits an HTTP header


class NotFoundError(LookupError):
    """The object does not exist in the caller's organisation."""


class InvalidInputError(ValueError):
    """A value a use case refuses; `field` names it (the REST API answers 422)."""

    def __init__(self, field_name: str, message: str) -> None:
        self.field = field_name
        super().__init__(f"{field_name}: {message}")


class ConfigurationExistsError(DuplicateError):
    """The organisation has a configuration for this provider and domain already."""


def _text(value: str, field_name: str, *, required: bool = True, max_length: int = MAX_NAME_LENGTH) -> str:
    """`value` without surrounding whitespace; refuses empty (when `required`), long, or NUL text."""
    stripped = value.strip()
    if required and not stripped:
        raise InvalidInputError(field_name, "must not be empty")
    if len(stripped) > max_length:
        raise InvalidInputError(field_name, f"must be at most {max_length} characters")
    _json_document(stripped, field_name)
    return stripped


MAX_JSON_DEPTH = 32  # a definition is a few levels deep; deeper is an attack or a mistake


def _json_document(value: Any, field_name: str) -> None:
    """Text anywhere in a JSON document must be storable: no NUL characters (PostgreSQL refuses
    them); and the document is at most `MAX_JSON_DEPTH` levels deep (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise InvalidInputError(field_name, "must not contain NUL characters")
        elif isinstance(item, dict | list | tuple):
            if depth >= MAX_JSON_DEPTH:
                raise InvalidInputError(field_name, f"must not be nested deeper than {MAX_JSON_DEPTH} levels")
            if isinstance(item, dict):
                stack.extend((key, depth) for key in item)
                stack.extend((child, depth + 1) for child in item.values())
            else:
                stack.extend((child, depth + 1) for child in item)


def _status(value: str) -> WorkflowStatus:
    try:
        return WorkflowStatus(value)
    except ValueError:
        raise InvalidInputError("status", "must be 'draft' or 'published'") from None


def _definition(raw: dict[str, Any], webhooks: WebhookPolicy) -> AgentDefinition:
    _json_document(raw, "definition")  # first: bounded depth before anything walks or prints it
    definition = AgentDefinition.from_dict(raw)
    try:
        webhooks.check(definition.webhook_url)
    except InvalidWebhookUrlError as exc:
        raise InvalidDefinitionError("webhook_url", str(exc)) from None
    return definition


def _template_variables(raw: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidInputError("template_context_variables", "must be a JSON object")
    _json_document(raw, "template_context_variables")
    return dict(raw)


def cloudonix_domain(value: str, field_name: str = "domain_id") -> str:
    """The normalised Cloudonix domain of `value` (protocol.md §7); refuses what is no domain name."""
    normalized = normalize_cloudonix_domain(value)
    if not normalized:
        raise InvalidInputError(field_name, "must not be empty")
    if not _DOMAIN_NAME.fullmatch(normalized):
        raise InvalidInputError(field_name, "must be a domain name such as 'acme' or 'voice.example.com'")
    return normalized


async def _agent_in(workflows: WorkflowRepository, organization_id: int, agent_uuid: UUID) -> Workflow:
    workflow = await workflows.get_by_uuid(agent_uuid)
    if workflow is None or workflow.id is None or workflow.organization_id != organization_id:
        raise NotFoundError("agent")
    return workflow


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
        user = await self._organizations.add_user(
            User(organization_id=org.stored_id, monthly_minutes=monthly_minutes, name=f"{name} owner")
        )
        key = new_api_key()
        await self._api_keys.add(org.stored_id, hash_api_key(key))
        return NewOrganization(organization_id=org.stored_id, user_id=user.stored_id, api_key=key)


@dataclass(frozen=True, slots=True)
class AgentDraft:
    name: str
    definition: dict[str, Any] = field(default_factory=lambda: {"engine": "linetest"})
    status: str = WorkflowStatus.DRAFT.value
    template_variables: dict[str, Any] = field(default_factory=dict)


class CreateAgent:
    def __init__(
        self,
        organizations: OrganizationRepository,
        workflows: WorkflowRepository,
        clock: Clock,
        webhooks: WebhookPolicy = HTTPS_ONLY,
    ) -> None:
        self._organizations = organizations
        self._workflows = workflows
        self._clock = clock
        self._webhooks = webhooks

    async def execute(self, organization_id: int, draft: AgentDraft, user_id: int | None = None) -> Workflow:
        """Raises `NotFoundError` for an unknown organisation, `ValueError` for a bad definition
        (`InvalidDefinitionError`) or another bad field (`InvalidInputError`)."""
        organization = await self._organizations.get(organization_id)
        if organization is None:
            raise NotFoundError("organization")
        name = _text(draft.name, "name")
        definition = _definition(draft.definition, self._webhooks)
        status = _status(draft.status)
        variables = _template_variables(draft.template_variables)
        owner = user_id if user_id is not None else await self._owner_of(organization_id)
        now = self._clock.now()
        return await self._workflows.add(
            Workflow(
                uuid=uuid4(),
                organization_id=organization_id,
                user_id=owner,
                name=name,
                definition=definition,
                status=status,
                template_variables=variables,
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
        """Raises `InvalidInputError` (a `ValueError`) for a bad domain, token or name, and
        `ConfigurationExistsError` (a `DuplicateError`) for a second one of the same domain."""
        normalized = cloudonix_domain(domain)
        token = _text(bearer_token, "bearer_token", max_length=MAX_TOKEN_LENGTH)
        if not _HEADER_SAFE.fullmatch(token):
            raise InvalidInputError("bearer_token", "must be printable ASCII without spaces")
        label = _text(name, "name", required=False)
        try:
            return await self._configs.add(
                TelephonyConfig.cloudonix(organization_id, normalized, token, label)
            )
        except DuplicateError as exc:
            raise ConfigurationExistsError(
                f"a Cloudonix configuration for {normalized} exists already in this organisation"
            ) from exc


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
        disposition: str | None = None,
    ) -> list[WorkflowRun]:
        """Newest first (only those of `disposition` when given). With `organization_id`, another
        organisation's agent is not found."""
        if organization_id is not None:
            workflow = await _agent_in(self._workflows, organization_id, agent_uuid)
        else:
            found = await self._workflows.get_by_uuid(agent_uuid)
            if found is None:
                raise NotFoundError("agent")
            workflow = found
        return await self._runs.list_for_workflow(workflow.stored_id, limit, before_id, disposition)

    async def page(
        self,
        organization_id: int,
        agent_uuid: UUID,
        limit: int = 50,
        before_id: int | None = None,
        disposition: str | None = None,
    ) -> RunPage:
        """One page of the agent's Runs tab, newest first; `next_before_id` continues it."""
        if not 1 <= limit <= MAX_RUNS_PAGE:
            raise InvalidInputError("limit", f"must be between 1 and {MAX_RUNS_PAGE}")
        if disposition is not None and disposition not in set(Disposition):
            raise InvalidInputError("disposition", f"must be one of {', '.join(Disposition)}")
        runs = await self.execute(agent_uuid, limit + 1, before_id, organization_id, disposition)
        items = runs[:limit]
        more = len(runs) > limit
        return RunPage(items=items, next_before_id=items[-1].id if more and items else None)


@dataclass(frozen=True, slots=True)
class RunPage:
    items: list[WorkflowRun]
    next_before_id: int | None


class ListAgents:
    def __init__(self, workflows: WorkflowRepository) -> None:
        self._workflows = workflows

    async def execute(self, organization_id: int) -> list[Workflow]:
        """The organisation's agents, oldest first."""
        return await self._workflows.list_for_organization(organization_id)


class GetAgent:
    def __init__(self, workflows: WorkflowRepository) -> None:
        self._workflows = workflows

    async def execute(self, organization_id: int, agent_uuid: UUID) -> Workflow:
        """Raises `NotFoundError` unless the agent belongs to `organization_id`."""
        return await _agent_in(self._workflows, organization_id, agent_uuid)


@dataclass(frozen=True, slots=True)
class AgentChanges:
    """A partial update: `None` leaves a field as it is."""

    name: str | None = None
    definition: dict[str, Any] | None = None
    status: str | None = None
    template_variables: dict[str, Any] | None = None


class UpdateAgent:
    def __init__(
        self, workflows: WorkflowRepository, clock: Clock, webhooks: WebhookPolicy = HTTPS_ONLY
    ) -> None:
        self._workflows = workflows
        self._clock = clock
        self._webhooks = webhooks

    async def execute(self, organization_id: int, agent_uuid: UUID, changes: AgentChanges) -> Workflow:
        """Apply `changes` (validated as on creation); the UUID never changes. Raises
        `NotFoundError`, `InvalidDefinitionError` or `InvalidInputError`."""
        workflow = await _agent_in(self._workflows, organization_id, agent_uuid)
        changed = False
        if changes.name is not None:
            workflow.name = _text(changes.name, "name")
            changed = True
        if changes.definition is not None:
            workflow.definition = _definition(changes.definition, self._webhooks)
            changed = True
        if changes.status is not None:
            workflow.status = _status(changes.status)
            changed = True
        if changes.template_variables is not None:
            workflow.template_variables = _template_variables(changes.template_variables)
            changed = True
        if not changed:
            return workflow
        workflow.updated_at = self._clock.now()
        return await self._workflows.update(workflow)


class ListConfigurations:
    def __init__(self, configs: TelephonyConfigRepository) -> None:
        self._configs = configs

    async def execute(self, organization_id: int) -> list[TelephonyConfig]:
        return await self._configs.list_for_organization(organization_id)


class DeleteConfiguration:
    def __init__(self, configs: TelephonyConfigRepository) -> None:
        self._configs = configs

    async def execute(self, organization_id: int, config_id: int) -> None:
        """Raises `NotFoundError` unless the configuration belongs to `organization_id`."""
        if not await self._configs.delete(organization_id, config_id):
            raise NotFoundError("telephony configuration")


class GetRun:
    def __init__(self, workflows: WorkflowRepository, runs: WorkflowRunRepository) -> None:
        self._workflows = workflows
        self._runs = runs

    async def execute(self, organization_id: int, run_id: int) -> WorkflowRun:
        """Raises `NotFoundError` unless the run's agent belongs to `organization_id`."""
        run = await self._runs.get(run_id)
        if run is None:
            raise NotFoundError("run")
        workflow = await self._workflows.get_by_uuid(run.agent_uuid)
        if workflow is None or workflow.id != run.workflow_id or workflow.organization_id != organization_id:
            raise NotFoundError("run")
        return run


# -- operator's views (the CLI): any organisation, no API key ---------------------------------------


@dataclass(frozen=True, slots=True)
class OrganizationSummary:
    organization: Organization
    monthly_minutes: int | None  # its owner's allowance; None when it has no owner
    agents: int


class ListOrganizations:
    def __init__(self, organizations: OrganizationRepository, workflows: WorkflowRepository) -> None:
        self._organizations = organizations
        self._workflows = workflows

    async def execute(self) -> list[OrganizationSummary]:
        """Every organisation, oldest first, with its owner's monthly minutes and its agent count."""
        summaries = []
        for organization in await self._organizations.list_all():
            owner = await self._organizations.owner_of(organization.stored_id)
            agents = await self._workflows.list_for_organization(organization.stored_id)
            summaries.append(
                OrganizationSummary(organization, owner.monthly_minutes if owner else None, len(agents))
            )
        return summaries


class ListAllAgents:
    def __init__(self, organizations: OrganizationRepository, workflows: WorkflowRepository) -> None:
        self._organizations = organizations
        self._workflows = workflows

    async def execute(self, organization_id: int | None = None) -> list[Workflow]:
        """The agents of one organisation (`NotFoundError` when there is none of that id), or of
        every organisation; oldest first within each, organisations oldest first."""
        if organization_id is not None:
            if await self._organizations.get(organization_id) is None:
                raise NotFoundError("organization")
            return await self._workflows.list_for_organization(organization_id)
        agents: list[Workflow] = []
        for organization in await self._organizations.list_all():
            agents.extend(await self._workflows.list_for_organization(organization.stored_id))
        return agents


class FindAgent:
    def __init__(self, workflows: WorkflowRepository) -> None:
        self._workflows = workflows

    async def execute(self, agent_uuid: UUID) -> Workflow:
        """The agent of this UUID in whichever organisation; `NotFoundError` when there is none."""
        workflow = await self._workflows.get_by_uuid(agent_uuid)
        if workflow is None:
            raise NotFoundError("agent")
        return workflow


class FindRun:
    def __init__(self, runs: WorkflowRunRepository) -> None:
        self._runs = runs

    async def execute(self, run_id: int) -> WorkflowRun:
        """The run of this id in whichever organisation; `NotFoundError` when there is none."""
        run = await self._runs.get(run_id)
        if run is None:
            raise NotFoundError("run")
        return run
