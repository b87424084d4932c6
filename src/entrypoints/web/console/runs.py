"""The agent's Runs tab (live over server-sent events), a run's page, and its live call's controls."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Coroutine
from typing import Annotated, Any
from urllib.parse import urlencode

from dishka import AsyncContainer
from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, Request, Response, get, post
from litestar.params import Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage, Template

from application.live_calls import CallNotLiveError
from application.management import MAX_RUNS_PAGE, GetAgent, GetRun, InvalidInputError, ListRuns, NotFoundError
from application.ports.call_control import HolderUnavailableError
from application.ports.run_feed import RunFeed
from application.recordings import GetRecording
from application.runs_control import HangUpRun, TransferRun
from application.webhooks import WebhookStatus
from entrypoints.web.api.errors import rule_for
from entrypoints.web.api.recordings import recording_response
from entrypoints.web.console.base import MAX_ID, AgentUuid, RunId, checked_form, go, page, signed_in
from entrypoints.web.console.views import RunView, run_row_html

RUNS_PAGE = 25
LIVE_EVENT = "run"


class RunPages(Controller):
    path = "/console"

    @get("/agents/{agent_uuid:uuid}/runs", include_in_schema=False)
    @inject
    async def runs(
        self,
        request: Request[Any, Any, Any],
        agent_uuid: AgentUuid,
        agents: FromDishka[GetAgent],
        runs: FromDishka[ListRuns],
        before_id: Annotated[int | None, Parameter(ge=1, le=MAX_ID)] = None,
    ) -> Template:
        session = await signed_in(request)
        workflow = await agents.execute(session.organization_id, agent_uuid)
        found = await runs.page(session.organization_id, agent_uuid, min(RUNS_PAGE, MAX_RUNS_PAGE), before_id)
        return page(
            "runs.html",
            session,
            agent=workflow,
            runs=[RunView(run) for run in found.items],
            next_before_id=found.next_before_id,
            first_page=before_id is None,
        )

    @get("/agents/{agent_uuid:uuid}/runs/live", include_in_schema=False)
    @inject
    async def live(
        self, request: Request[Any, Any, Any], agent_uuid: AgentUuid, agents: FromDishka[GetAgent]
    ) -> ServerSentEvent:
        """The Runs tab's changes as HTML rows: a run of this agent appears at the top when minted,
        and its row is replaced whenever it changes (server-sent events, event `run`)."""
        session = await signed_in(request)
        await agents.execute(session.organization_id, agent_uuid)
        container: AsyncContainer = request.app.state.dishka_container
        feed = await container.get(RunFeed)
        return ServerSentEvent(_changes(container, feed, session.organization_id, str(agent_uuid)))

    @get("/runs/{run_id:int}", include_in_schema=False)
    @inject
    async def run(
        self,
        request: Request[Any, Any, Any],
        run_id: RunId,
        runs: FromDishka[GetRun],
        agents: FromDishka[GetAgent],
        webhooks: FromDishka[WebhookStatus],
    ) -> Template:
        session = await signed_in(request)
        found = await runs.execute(session.organization_id, run_id)
        workflow = await agents.execute(session.organization_id, found.agent_uuid)
        return page(
            "run.html",
            session,
            run=RunView(found, await webhooks.of(found)),
            agent=workflow,
            message=request.query_params.get("message"),
        )

    @get("/runs/{run_id:int}/recording", include_in_schema=False)
    @inject
    async def recording(
        self, request: Request[Any, Any, Any], run_id: RunId, recordings: FromDishka[GetRecording]
    ) -> Response[Any]:
        """The run page's player: the same WAV and ranges as the API's route, for the session."""
        session = await signed_in(request)
        found = await recordings.execute(session.organization_id, run_id)
        return recording_response(found, request.headers.get("range"), run_id)

    @post("/runs/{run_id:int}/hangup", include_in_schema=False)
    @inject
    async def hang_up(
        self, request: Request[Any, Any, Any], run_id: RunId, hang_up: FromDishka[HangUpRun]
    ) -> Response[Any]:
        session = await signed_in(request)
        await checked_form(request, session)
        return await _control(request, run_id, "Hang-up", hang_up.execute(session.organization_id, run_id))

    @post("/runs/{run_id:int}/transfer", include_in_schema=False)
    @inject
    async def transfer(
        self, request: Request[Any, Any, Any], run_id: RunId, transfer: FromDishka[TransferRun]
    ) -> Response[Any]:
        session = await signed_in(request)
        form = await checked_form(request, session)
        control = transfer.execute(session.organization_id, run_id, form.get("destination", ""))
        return await _control(request, run_id, "Transfer", control)


async def _control(
    request: Request[Any, Any, Any], run_id: int, what: str, control: Coroutine[Any, Any, object]
) -> Response[Any]:
    """A hang-up or transfer from the run page, then back to it saying how it went: a live call
    that is gone or whose instance does not answer in the REST API's words."""
    try:
        await control
        message = f"{what} requested."
    except (CallNotLiveError, HolderUnavailableError) as exc:
        rule = rule_for(exc)
        message = f"{rule.detail(exc) if rule else exc}."
    except (InvalidInputError, ValueError) as exc:
        message = f"{what} refused: {exc}"
    return go(request, f"/console/runs/{run_id}?{urlencode({'message': message})}")


async def _changes(
    container: AsyncContainer, feed: RunFeed, organization_id: int, agent_uuid: str
) -> AsyncGenerator[ServerSentEventMessage, None]:
    """Each change of one of the agent's runs, re-read (organisation-scoped) and rendered as its row."""
    async with feed.subscribe(organization_id) as changes:
        yield ServerSentEventMessage(comment="live")  # the browser knows the stream is open
        async for change in changes:
            if change.agent_uuid != agent_uuid:
                continue
            async with container() as request_container:
                get_run = await request_container.get(GetRun)
                try:
                    run = await get_run.execute(organization_id, change.run_id)
                except NotFoundError:
                    continue
            yield ServerSentEventMessage(data=run_row_html(RunView(run)), event=LIVE_EVENT)
