"""`/api/v1/runs`: one run, its organisation's runs as they change (SSE), and control of its live
call."""

from collections.abc import AsyncIterator
from typing import Annotated

import msgspec
from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, get, post
from litestar.openapi.spec import Example
from litestar.params import Body, Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage
from litestar.status_codes import HTTP_202_ACCEPTED

from application.authentication import Caller
from application.management import GetRun
from application.ports.repositories import StorageError
from application.run_watch import WatchRuns
from application.runs_control import HangUpRun, TransferRun
from application.webhooks import WebhookStatus
from entrypoints.web.api.auth import SECURITY, require_api_key
from entrypoints.web.api.errors import (
    CONFLICT_NOT_LIVE,
    HOLDER_UNAVAILABLE,
    NOT_FOUND,
    UNPROCESSABLE,
    responses,
)
from entrypoints.web.api.schemas import MAX_ID, CallControlAccepted, Run, TransferRequest

RunId = Annotated[int, Parameter(ge=1, le=MAX_ID, description="The run's id.")]


class RunController(Controller):
    path = "/api/v1/runs"
    tags = ["Runs"]
    guards = [require_api_key]
    security = SECURITY

    @get(
        "/{run_id:int}",
        summary="Get one run",
        response_description="The run.",
        description="With `webhook` (its delivery's state, attempts and last status) when the agent had "
        "a `webhook_url` when the run ended.",
        responses=responses(NOT_FOUND),
    )
    @inject
    async def get_run(
        self,
        run_id: RunId,
        caller: FromDishka[Caller],
        runs: FromDishka[GetRun],
        webhooks: FromDishka[WebhookStatus],
    ) -> Run:
        run = await runs.execute(caller.organization_id, run_id)
        return Run.of(run, await webhooks.of(run))

    @get(
        "/events",
        summary="Watch the organisation's runs change (server-sent events)",
        response_description="A `text/event-stream` that stays open.",
        description="One `event: run` per change of a run of the key's organisation (minted, running, "
        "ended; on any instance), its `data` the run as `GET /api/v1/runs/{run_id}` shows it. A comment "
        "line (`: keep-alive`) opens the stream and comes again after 15 s without a change. Best "
        "effort: a client that falls behind loses the oldest changes, and one that reconnects should "
        "read the list again. The stream ends when the client leaves or the instance shuts down.",
    )
    @inject
    async def events(
        self,
        caller: FromDishka[Caller],
        watch: FromDishka[WatchRuns],
        webhooks: FromDishka[WebhookStatus],
    ) -> ServerSentEvent:
        async def messages() -> AsyncIterator[ServerSentEventMessage]:
            async for run in watch.execute(caller.organization_id):
                if run is None:
                    yield ServerSentEventMessage(data=None, comment="keep-alive")
                else:
                    try:
                        webhook = await webhooks.of(run)
                    except StorageError:  # the run without its webhook's state, this once
                        webhook = None
                    document = Run.of(run, webhook)
                    yield ServerSentEventMessage(data=msgspec.json.encode(document).decode(), event="run")

        return ServerSentEvent(messages(), headers={"Cache-Control": "no-store"})

    @post(
        "/{run_id:int}/hangup",
        status_code=HTTP_202_ACCEPTED,
        summary="Hang up the run's live call",
        response_description="The hang-up is under way.",
        description="Ends the call through the provider's API, in the background: the answer comes once "
        "the instance holding the call (this one or another) has taken the request. The hang-up is "
        "immediate (it does not wait for the agent's words) and the run shows the end "
        "(`operator_hangup`). 409 when the run has no live call; 503 when the instance holding it "
        "did not answer in time.",
        responses=responses(NOT_FOUND, CONFLICT_NOT_LIVE, HOLDER_UNAVAILABLE),
    )
    @inject
    async def hang_up(
        self, run_id: RunId, caller: FromDishka[Caller], hang_up: FromDishka[HangUpRun]
    ) -> CallControlAccepted:
        await hang_up.execute(caller.organization_id, run_id)
        return CallControlAccepted(run_id=run_id, action="hangup")

    @post(
        "/{run_id:int}/transfer",
        status_code=HTTP_202_ACCEPTED,
        summary="Transfer the run's live call",
        response_description="The transfer is under way.",
        description="Moves the caller to `destination` through the provider's API, in the background, "
        "once the instance holding the call has taken the request. 409 when the run has no live call; "
        "503 when the instance holding it did not answer in time.",
        responses=responses(NOT_FOUND, CONFLICT_NOT_LIVE, UNPROCESSABLE, HOLDER_UNAVAILABLE),
    )
    @inject
    async def transfer(
        self,
        run_id: RunId,
        data: Annotated[
            TransferRequest,
            Body(
                examples=[
                    Example(summary="A phone number", value={"destination": "+15555550123"}),
                    Example(summary="A SIP URI", value={"destination": "sip:desk@example.com"}),
                ]
            ),
        ],
        caller: FromDishka[Caller],
        transfer: FromDishka[TransferRun],
    ) -> CallControlAccepted:
        requested = await transfer.execute(caller.organization_id, run_id, data.destination)
        return CallControlAccepted(run_id=run_id, action="transfer", destination=requested.destination or "")
