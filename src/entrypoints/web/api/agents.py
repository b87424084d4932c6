"""`/api/v1/agents`: agents, their Runs tab and their stream URL."""

from typing import Annotated, Any
from uuid import UUID

from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, Request, get, patch, post
from litestar.openapi.spec import Example
from litestar.params import Body, Parameter
from litestar.status_codes import HTTP_201_CREATED
from msgspec import UNSET

from application.authentication import Caller
from application.management import (
    MAX_RUNS_PAGE,
    AgentChanges,
    AgentDraft,
    CreateAgent,
    GetAgent,
    InvalidInputError,
    ListAgents,
    ListRuns,
    UpdateAgent,
)
from application.stream_url import StreamUrl
from application.webhooks import RotateWebhookSecret
from domain.disposition import Disposition
from entrypoints.web.api.auth import SECURITY, require_api_key
from entrypoints.web.api.errors import NOT_FOUND, UNPROCESSABLE, responses
from entrypoints.web.api.schemas import (
    DEFINITION_EXAMPLE,
    MAX_ID,
    PIPECAT_DEFINITION_EXAMPLE,
    Agent,
    AgentCreate,
    AgentUpdate,
    Run,
    RunPage,
    StreamUrlAnswer,
    WebhookSecretAnswer,
)

AgentUuid = Annotated[UUID, Parameter(description="The agent's UUID.")]


class AgentController(Controller):
    path = "/api/v1/agents"
    tags = ["Agents"]
    guards = [require_api_key]
    security = SECURITY

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Create an agent",
        response_description="The new agent, with its UUID.",
        description="The definition is validated: an unknown engine or a `max_call_seconds` that is "
        "not a positive integer is refused with 422 naming the field.",
        responses=responses(UNPROCESSABLE),
    )
    @inject
    async def create_agent(
        self,
        data: Annotated[
            AgentCreate,
            Body(
                examples=[
                    Example(
                        summary="A line-test agent",
                        value={"name": "Line test", "definition": {"engine": "linetest"}},
                    ),
                    Example(
                        summary="A published pipecat agent",
                        value={
                            "name": "Front desk",
                            "definition": PIPECAT_DEFINITION_EXAMPLE,
                            "status": "published",
                            "template_context_variables": {"company": "Acme"},
                        },
                    ),
                ]
            ),
        ],
        caller: FromDishka[Caller],
        create: FromDishka[CreateAgent],
    ) -> Agent:
        workflow = await create.execute(
            caller.organization_id,
            AgentDraft(
                name=data.name,
                definition=data.definition,
                status=data.status,
                template_variables=data.template_context_variables,
            ),
        )
        return Agent.of(workflow)

    @get(
        "/",
        summary="List the organisation's agents",
        description="Oldest first.",
        response_description="The agents.",
        responses=responses(),
    )
    @inject
    async def list_agents(self, caller: FromDishka[Caller], agents: FromDishka[ListAgents]) -> list[Agent]:
        return [Agent.of(workflow) for workflow in await agents.execute(caller.organization_id)]

    @get(
        "/{agent_uuid:uuid}",
        summary="Get one agent",
        response_description="The agent.",
        responses=responses(NOT_FOUND),
    )
    @inject
    async def get_agent(
        self, agent_uuid: AgentUuid, caller: FromDishka[Caller], agents: FromDishka[GetAgent]
    ) -> Agent:
        return Agent.of(await agents.execute(caller.organization_id, agent_uuid))

    @patch(
        "/{agent_uuid:uuid}",
        summary="Change an agent",
        response_description="The agent as changed.",
        description="Any of the creation fields; the others keep their value. The UUID never changes.",
        responses=responses(NOT_FOUND, UNPROCESSABLE),
    )
    @inject
    async def update_agent(
        self,
        agent_uuid: AgentUuid,
        data: Annotated[
            AgentUpdate,
            Body(
                examples=[
                    Example(summary="Publish", value={"status": "published"}),
                    Example(summary="New definition", value={"definition": DEFINITION_EXAMPLE}),
                ]
            ),
        ],
        caller: FromDishka[Caller],
        update: FromDishka[UpdateAgent],
    ) -> Agent:
        changes = AgentChanges(
            name=None if data.name is UNSET else data.name,
            definition=None if data.definition is UNSET else data.definition,
            status=None if data.status is UNSET else data.status,
            template_variables=(
                None if data.template_context_variables is UNSET else data.template_context_variables
            ),
        )
        return Agent.of(await update.execute(caller.organization_id, agent_uuid, changes))

    @get(
        "/{agent_uuid:uuid}/runs",
        summary="The agent's runs (its Runs tab)",
        response_description="One page of runs, newest first.",
        description="Newest first, in pages: pass `next_before_id` back as `before_id` for the next one. "
        "A run is listed from the moment its call is accepted, in whatever state it is. With "
        "`disposition`, only the ended runs of that disposition.",
        responses=responses(NOT_FOUND, UNPROCESSABLE),
    )
    @inject
    async def list_runs(
        self,
        request: Request[Any, Any, Any],
        agent_uuid: AgentUuid,
        caller: FromDishka[Caller],
        runs: FromDishka[ListRuns],
        limit: Annotated[
            int, Parameter(ge=1, le=MAX_RUNS_PAGE, description="Runs per page (1-200).", examples=[])
        ] = 50,
        before_id: Annotated[
            int | None,
            Parameter(ge=1, le=MAX_ID, description="Only runs with a smaller id (the previous page's end)."),
        ] = None,
        disposition: Annotated[
            str | None,
            Parameter(
                max_length=32,
                description=f"Only runs of this disposition: {', '.join(Disposition)}.",
                examples=[Example(summary="The caller never spoke", value="no_speech")],
            ),
        ] = None,
    ) -> RunPage:
        for name in ("limit", "before_id"):
            _whole_number(request, name)
        page = await runs.page(caller.organization_id, agent_uuid, limit, before_id, disposition)
        return RunPage(items=[Run.of(run) for run in page.items], next_before_id=page.next_before_id)

    @post(
        "/{agent_uuid:uuid}/webhook-secret",
        status_code=HTTP_201_CREATED,
        summary="A new webhook signing secret",
        response_description="The secret, shown this once.",
        description="The agent's end-of-call webhooks (`definition.webhook_url`) are signed the Standard "
        "Webhooks way with this `whsec_` secret from now on; the previous one stops signing at once "
        "(a delivery still being retried is signed with the new one). Only stored encrypted; never "
        "shown again.",
        responses=responses(NOT_FOUND),
    )
    @inject
    async def rotate_webhook_secret(
        self, agent_uuid: AgentUuid, caller: FromDishka[Caller], rotate: FromDishka[RotateWebhookSecret]
    ) -> WebhookSecretAnswer:
        return WebhookSecretAnswer(secret=await rotate.execute(caller.organization_id, agent_uuid))

    @get(
        "/{agent_uuid:uuid}/stream-url",
        summary="The agent's stream URL and CXML",
        response_description="The URL and the CXML document.",
        description="The `wss://` URL Cloudonix streams a call of `domain` to (built from "
        "`AGENT_STREAM_PUBLIC_URL`), and the CXML document to paste into a Cloudonix Voice Application.",
        responses=responses(NOT_FOUND, UNPROCESSABLE),
    )
    @inject
    async def stream_url(
        self,
        agent_uuid: AgentUuid,
        domain: Annotated[
            str,
            Parameter(
                min_length=1,
                max_length=253,
                description="The Cloudonix domain the calls come from (as Cloudonix names it).",
                examples=[Example(summary="Short form", value="acme")],
            ),
        ],
        caller: FromDishka[Caller],
        address: FromDishka[StreamUrl],
    ) -> StreamUrlAnswer:
        found = await address.execute(caller.organization_id, agent_uuid, domain)
        return StreamUrlAnswer(url=found.url, cxml=found.cxml)


def _whole_number(request: Request[Any, Any, Any], name: str) -> None:
    """A paging parameter is written in digits: the query decoder would also read `1e3` as 1000
    and `null` as absent, which a client never means (422 naming the parameter)."""
    for raw in request.query_params.getall(name, []):
        if not (raw.isascii() and raw.isdigit()):
            raise InvalidInputError(name, "must be a whole number written in digits, such as 1001")
