"""Request and answer bodies of the management API (interfaces.md), as msgspec structs.

Answers are built from the shared JSON shapes of `entrypoints.serialization` and converted into
these structs, so what the OpenAPI document says is what is sent (a drift fails loudly).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from domain.agents import Workflow
from domain.telephony import TelephonyConfig
from domain.webhooks import WebhookDelivery
from domain.workflow_run import WorkflowRun
from entrypoints.serialization import agent_to_dict, config_to_dict, run_to_dict, webhook_to_dict

MAX_ID = 2**53  # ids in paths and queries: beyond any real id, and exact as a JSON number
AGENT_UUID_EXAMPLE = "0b6f8d7e-3c1a-4f0e-9d2b-6a5c4e3f2a1b"
DEFINITION_EXAMPLE: dict[str, Any] = {
    "engine": "linetest",
    "greeting": "Hello, this is the line test.",
    "max_call_seconds": 600,
}
PIPECAT_DEFINITION_EXAMPLE: dict[str, Any] = {
    "engine": "pipecat",
    "system_prompt": "You are the front desk of {{company}}. The caller is {{caller_number}}.",
    "greeting": "Hello, how can I help?",
    "llm": {"provider": "openai", "model": "gpt-4o-mini", "api_key_env": "OPENAI_API_KEY"},
    "stt": {"provider": "openai", "model": "gpt-4o-transcribe", "api_key_env": "OPENAI_API_KEY"},
    "tts": {
        "provider": "openai",
        "model": "gpt-4o-mini-tts",
        "voice": "alloy",
        "api_key_env": "OPENAI_API_KEY",
    },
    "transfer_destinations": ["+15555550123", "sip:desk@example.com"],
    "max_call_seconds": 600,
}
_DATE_TIME = {"extra": {"format": "date-time"}}

Name = Annotated[
    str, Meta(min_length=1, max_length=255, description="A name people read.", examples=["Front desk"])
]
Definition = Annotated[
    dict[str, Any],
    Meta(
        description=(
            'The agent\'s definition: `engine` ("linetest" or "pipecat"), optional `greeting` and '
            "`transfer_destination`, `max_call_seconds` (a positive integer, default 600), and the "
            "engine's own settings beside them."
        ),
        examples=[DEFINITION_EXAMPLE, PIPECAT_DEFINITION_EXAMPLE],
    ),
]
Status = Annotated[
    Literal["draft", "published"],
    Meta(description="Both draft and published agents answer their stream URL.", examples=["published"]),
]
TemplateVariables = Annotated[
    dict[str, Any],
    Meta(
        description="Values for `{{name}}` placeholders; they join each run's `initial_context`.",
        examples=[{"company": "Acme"}],
    ),
]


# -- errors ----------------------------------------------------------------------------------------


class ErrorBody(Struct):
    """Every error answer: what went wrong, in one sentence."""

    detail: Annotated[str, Meta(description="What went wrong.", examples=["Agent not found"])]
    errors: (
        Annotated[
            list[dict[str, Any]],
            Meta(description="For a request that failed validation: one entry per offending value."),
        ]
        | UnsetType
    ) = UNSET


# -- agents ----------------------------------------------------------------------------------------


class AgentCreate(Struct, forbid_unknown_fields=True):
    name: Name
    definition: Definition
    status: Status = "draft"
    template_context_variables: TemplateVariables = msgspec.field(default_factory=dict)


class AgentUpdate(Struct, forbid_unknown_fields=True):
    """Any of the fields of `AgentCreate`; those left out keep their value."""

    name: Name | UnsetType = UNSET
    definition: Definition | UnsetType = UNSET
    status: Status | UnsetType = UNSET
    template_context_variables: TemplateVariables | UnsetType = UNSET


class Agent(Struct):
    uuid: Annotated[
        str,
        Meta(
            description="The agent's public identifier; it never changes and is part of its stream URL.",
            examples=[AGENT_UUID_EXAMPLE],
            extra_json_schema={"extra": {"format": "uuid"}},
        ),
    ]
    id: Annotated[int, Meta(description="The storage id.", examples=[7])]
    name: Name
    status: Status
    definition: Definition
    template_context_variables: TemplateVariables
    created_at: Annotated[
        str | None, Meta(examples=["2026-05-01T09:30:00+00:00"], extra_json_schema=_DATE_TIME)
    ]
    updated_at: Annotated[
        str | None, Meta(examples=["2026-05-02T10:00:00+00:00"], extra_json_schema=_DATE_TIME)
    ]

    @classmethod
    def of(cls, workflow: Workflow) -> Agent:
        return msgspec.convert(agent_to_dict(workflow), cls)


# -- telephony configurations ----------------------------------------------------------------------


class TelephonyConfigurationCreate(Struct, forbid_unknown_fields=True):
    provider: Annotated[
        Literal["cloudonix"], Meta(description="The telephony provider; only Cloudonix for now.")
    ]
    domain_id: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=253,
            description="The Cloudonix domain: `acme` means `acme.cloudonix.net`; a name with a dot is kept.",
            examples=["acme"],
        ),
    ]
    bearer_token: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=4096,
            description="The domain's API key; stored encrypted, never shown again in full.",
            examples=["XI1234567890abcdefABCDEF"],
        ),
    ]
    name: Annotated[
        str, Meta(max_length=255, description="A label; the domain when left out.", examples=["Acme main"])
    ] = ""


class TelephonyConfiguration(Struct):
    id: Annotated[int, Meta(examples=[3])]
    provider: Annotated[str, Meta(examples=["cloudonix"])]
    domain_id: Annotated[str, Meta(description="Normalised domain.", examples=["acme.cloudonix.net"])]
    name: Annotated[str, Meta(examples=["Acme main"])]
    bearer_token: Annotated[
        str,
        Meta(
            description="Masked: the first and last four characters (a short token is hidden entirely).",
            examples=["XI12****************CDEF"],
        ),
    ]

    @classmethod
    def of(cls, config: TelephonyConfig) -> TelephonyConfiguration:
        return msgspec.convert(config_to_dict(config), cls)


# -- runs ------------------------------------------------------------------------------------------


class WebhookState(Struct):
    """Where the run's end-of-call webhook stands (shown by `GET /api/v1/runs/{id}` when the agent
    had a `webhook_url` when the run ended)."""

    state: Annotated[
        Literal["pending", "delivered", "failed"],
        Meta(description="failed: no 2xx answer within 24 hours of retries.", examples=["delivered"]),
    ]
    attempts: Annotated[int, Meta(examples=[1])]
    last_status: Annotated[
        int | None, Meta(description="The last attempt's HTTP status; null if none answered.", examples=[200])
    ]


class RunRecordingInfo(Struct):
    """Where the run's stereo WAV is (caller left, agent right), and how long it is."""

    url: Annotated[
        str,
        Meta(
            description="`GET` it with the API key (HTTP ranges work).",
            examples=["https://agents.example.com/api/v1/runs/1042/recording"],
        ),
    ]
    seconds: Annotated[float, Meta(examples=[130.24])]
    channels: Annotated[int, Meta(examples=[2])]


class Run(Struct):
    """One call (a workflow run) as the agent's Runs tab shows it."""

    id: Annotated[int, Meta(examples=[1042])]
    name: Annotated[str, Meta(description='"WR-AGS-" and 8 digits.', examples=["WR-AGS-00417263"])]
    agent_uuid: Annotated[
        str, Meta(examples=[AGENT_UUID_EXAMPLE], extra_json_schema={"extra": {"format": "uuid"}})
    ]
    state: Annotated[Literal["initialized", "running", "completed", "failed"], Meta(examples=["completed"])]
    call_type: Annotated[str, Meta(examples=["inbound"])]
    mode: Annotated[str, Meta(description="The provider.", examples=["cloudonix"])]
    initial_context: Annotated[
        dict[str, Any],
        Meta(
            examples=[
                {
                    "caller_number": "+15555550100",
                    "called_number": "+15555550199",
                    "provider": "cloudonix",
                    "direction": "inbound",
                    "company": "Acme",
                }
            ]
        ),
    ]
    gathered_context: Annotated[dict[str, Any], Meta(examples=[{"call_id": "call-1", "transcript": []}])]
    logs: Annotated[dict[str, Any], Meta(examples=[{"inbound_webhook": {"domain": "acme"}}])]
    created_at: Annotated[str, Meta(examples=["2026-05-01T09:30:00+00:00"], extra_json_schema=_DATE_TIME)]
    started_at: Annotated[
        str | None, Meta(examples=["2026-05-01T09:30:01+00:00"], extra_json_schema=_DATE_TIME)
    ]
    ended_at: Annotated[
        str | None, Meta(examples=["2026-05-01T09:32:11+00:00"], extra_json_schema=_DATE_TIME)
    ]
    duration_seconds: Annotated[float | None, Meta(examples=[130.2])]
    end_reason: Annotated[
        str | None,
        Meta(
            description="caller_hangup, agent_hangup, operator_hangup, transferred, max_duration, drained, "
            "instance_lost or error.",
            examples=["caller_hangup"],
        ),
    ]
    close_code: Annotated[int | None, Meta(description="The WebSocket close code.", examples=[1000])]
    close_reason: Annotated[str | None, Meta(examples=[""])]
    disposition: Annotated[
        str | None,
        Meta(
            description="How the call ended, in an operator's words (null while it is live): completed, "
            "caller_hung_up, agent_ended, operator_ended, transferred, max_duration, no_speech or error.",
            examples=["completed"],
        ),
    ]
    webhook: Annotated[WebhookState, Meta(description="The end-of-call webhook's delivery.")] | UnsetType = (
        UNSET
    )
    trace_id: Annotated[
        str | None,
        Meta(
            description="The call's OpenTelemetry trace id (32 hex digits); null when tracing is off.",
            examples=["4bf92f3577b34da6a3ce929d0e0e4736"],
        ),
    ] = None
    recording: Annotated[
        RunRecordingInfo | None,
        Meta(description="The call's recording, for agents with `recording: true`; null without one."),
    ] = None

    @classmethod
    def of(cls, run: WorkflowRun, webhook: WebhookDelivery | None = None) -> Run:
        document = run_to_dict(run)
        if webhook is not None:
            document["webhook"] = webhook_to_dict(webhook)
        return msgspec.convert(document, cls)


class RunPage(Struct):
    items: Annotated[list[Run], Meta(description="Newest first.")]
    next_before_id: Annotated[
        int | None,
        Meta(description="Pass as `before_id` for the next page; null on the last page.", examples=[1001]),
    ]


# -- live call control -----------------------------------------------------------------------------


class TransferRequest(Struct, forbid_unknown_fields=True):
    destination: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=256,
            description="An E.164 number or a SIP URI.",
            examples=["+15555550123", "sip:desk@example.com"],
        ),
    ]


class CallControlAccepted(Struct):
    """The action was handed to the live call; the run shows how the call ended."""

    run_id: Annotated[int, Meta(examples=[1042])]
    action: Annotated[Literal["hangup", "transfer"], Meta(examples=["hangup"])]
    destination: Annotated[str, Meta(examples=["+15555550123"])] | UnsetType = UNSET


# -- stream URL ------------------------------------------------------------------------------------


class StreamUrlAnswer(Struct):
    url: Annotated[
        str,
        Meta(
            description="The WebSocket URL a Cloudonix call streams to.",
            examples=[
                f"wss://agents.example.com/api/v1/agent-stream/{AGENT_UUID_EXAMPLE}?provider=cloudonix&Domain=acme"
            ],
        ),
    ]
    cxml: Annotated[
        str,
        Meta(
            description="The CXML document to paste into a Cloudonix Voice Application.",
            examples=[
                '<?xml version="1.0" encoding="UTF-8"?>\n<Response>\n  <Connect>\n    <Stream url="wss://'
                f"agents.example.com/api/v1/agent-stream/{AGENT_UUID_EXAMPLE}?provider=cloudonix&amp;"
                'Domain=acme" />\n  </Connect>\n  <Pause length="40" />\n</Response>\n'
            ],
        ),
    ]


# -- provider callbacks ----------------------------------------------------------------------------


class CallbackReceived(Struct):
    received: Annotated[bool, Meta(examples=[True])] = True


# -- webhooks --------------------------------------------------------------------------------------


class WebhookSecretAnswer(Struct):
    secret: Annotated[
        str,
        Meta(
            description="The agent's new signing secret (Standard Webhooks `whsec_` form), shown this once; "
            "the previous one no longer signs.",
            examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
        ),
    ]
