"""`/api/v1/telephony-configurations`, and the provider callback of a Cloudonix transfer."""

from dataclasses import dataclass
from typing import Annotated, Any

from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, Request, delete, get, post
from litestar.exceptions import ClientException, NotFoundException
from litestar.openapi.spec import Example, OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import Body, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from adapters.cloudonix.transfers import TransferCallbacks, payload_from_form_or_json
from application.authentication import Caller
from application.management import AddCloudonixConfiguration, DeleteConfiguration, ListConfigurations
from entrypoints.web.api.auth import SECURITY, require_api_key
from entrypoints.web.api.errors import (
    BAD_REQUEST,
    CONFLICT_EXISTS,
    NOT_FOUND,
    UNKNOWN_TRANSFER,
    UNPROCESSABLE,
    responses,
)
from entrypoints.web.api.schemas import (
    MAX_ID,
    CallbackReceived,
    TelephonyConfiguration,
    TelephonyConfigurationCreate,
)

MAX_CALLBACK_BYTES = 64 * 1024
_CALLBACK_EXAMPLES = {
    "answered": Example(
        summary="The destination answered (conference join)",
        value={"StatusCallbackEvent": "participant-join", "Session": "S-dest"},
    ),
    "busy": Example(summary="The destination was busy, as a one-element list", value=[{"status": "busy"}]),
}


@dataclass
class TransferCallbackOperation(Operation):
    """The callback's body is read raw (JSON object or list, or form data); this describes it."""

    def __post_init__(self) -> None:
        callback_object = Schema(type=OpenAPIType.OBJECT, additional_properties=True)
        self.request_body = RequestBody(
            required=True,
            description="Cloudonix's callback: a JSON object, a one-element JSON list, or form data.",
            content={
                "application/json": OpenAPIMediaType(
                    schema=Schema(
                        one_of=[
                            callback_object,
                            Schema(type=OpenAPIType.ARRAY, items=callback_object),
                        ]
                    ),
                    examples=dict(_CALLBACK_EXAMPLES),
                ),
                "application/x-www-form-urlencoded": OpenAPIMediaType(
                    schema=Schema(
                        type=OpenAPIType.OBJECT,
                        additional_properties=Schema(type=OpenAPIType.STRING),
                    ),
                    examples={"answered": _CALLBACK_EXAMPLES["answered"]},
                ),
            },
        )


class TelephonyConfigurationController(Controller):
    path = "/api/v1/telephony-configurations"
    tags = ["Telephony configurations"]
    guards = [require_api_key]
    security = SECURITY

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Add a Cloudonix configuration",
        response_description="The configuration, its token masked.",
        description="The domain is normalised (`acme` -> `acme.cloudonix.net`); the bearer token is "
        "stored encrypted and answered masked. A second configuration of one domain in one "
        "organisation is refused with 409.",
        responses=responses(CONFLICT_EXISTS, UNPROCESSABLE),
    )
    @inject
    async def create_configuration(
        self,
        data: Annotated[
            TelephonyConfigurationCreate,
            Body(
                examples=[
                    Example(
                        summary="A Cloudonix domain",
                        value={
                            "provider": "cloudonix",
                            "domain_id": "acme",
                            "bearer_token": "XI1234567890abcdefABCDEF",
                            "name": "Acme main",
                        },
                    )
                ]
            ),
        ],
        caller: FromDishka[Caller],
        add: FromDishka[AddCloudonixConfiguration],
    ) -> TelephonyConfiguration:
        config = await add.execute(caller.organization_id, data.domain_id, data.bearer_token, data.name)
        return TelephonyConfiguration.of(config)

    @get(
        "/",
        summary="List the organisation's telephony configurations",
        response_description="The configurations, tokens masked.",
        description="Oldest first; tokens masked.",
        responses=responses(),
    )
    @inject
    async def list_configurations(
        self, caller: FromDishka[Caller], configs: FromDishka[ListConfigurations]
    ) -> list[TelephonyConfiguration]:
        return [TelephonyConfiguration.of(config) for config in await configs.execute(caller.organization_id)]

    @delete(
        "/{config_id:int}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Delete a telephony configuration",
        response_description="Deleted.",
        responses=responses(NOT_FOUND),
    )
    @inject
    async def delete_configuration(
        self,
        config_id: Annotated[int, Parameter(ge=1, le=MAX_ID, description="The configuration's id.")],
        caller: FromDishka[Caller],
        configs: FromDishka[DeleteConfiguration],
    ) -> None:
        await configs.execute(caller.organization_id, config_id)


@post(
    "/api/v1/telephony/cloudonix/transfer-result/{transfer_id:str}",
    status_code=HTTP_200_OK,
    tags=["Provider callbacks"],
    summary="Cloudonix's callback during a transfer",
    response_description="The callback was taken.",
    description="Called by Cloudonix, not by operators: no API key, the unguessable `transfer_id` "
    "is the capability. The body is a JSON object, a one-element JSON list, or form data "
    "(protocol.md §5). An unknown id is 404.",
    security=[],
    request_max_body_size=MAX_CALLBACK_BYTES,
    operation_class=TransferCallbackOperation,
    responses={**BAD_REQUEST, **UNPROCESSABLE, **UNKNOWN_TRANSFER},
)
@inject
async def transfer_result(
    request: Request[Any, Any, Any],
    transfer_id: Annotated[
        str, Parameter(min_length=1, max_length=128, description="The id our transfer request named.")
    ],
    transfers: FromDishka[TransferCallbacks],
) -> CallbackReceived:
    body = await request.body()
    try:
        payload = payload_from_form_or_json(request.headers.get("content-type", ""), body)
    except ValueError:
        raise ClientException("the callback body is neither JSON nor form data") from None
    if not transfers.deliver(transfer_id, payload):
        raise NotFoundException("Transfer not found")
    return CallbackReceived()
