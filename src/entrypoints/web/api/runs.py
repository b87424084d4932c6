"""`/api/v1/runs`: one run, and control of its live call."""

from typing import Annotated

from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, get, post
from litestar.openapi.spec import Example
from litestar.params import Body, Parameter
from litestar.status_codes import HTTP_202_ACCEPTED

from application.authentication import Caller
from application.management import GetRun
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
