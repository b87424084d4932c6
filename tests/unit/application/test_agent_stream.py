"""The agent-stream use case on in-memory adapters: every row of the close-code table, and the agent's
session around the handshake."""

from __future__ import annotations

import asyncio
import re
from typing import Any
from uuid import uuid4

import pytest

from adapters.memory.calls import InMemoryCallSocket
from application.ports.live_call import ActiveCall, AgentPipeline, AgentSession, CallJournal, CallOutcome
from domain.agents import AgentDefinition, Organization, User
from domain.close_policy import AgentMisconfiguredError, Close
from domain.stream_events import StopIn
from domain.telephony import Provider, SecretStr, TelephonyConfig
from domain.workflow_run import RunState
from tests.unit.application.conftest import CONNECTED, STOP, World, build_world, socket_with, start_message


async def test_happy_path_mints_a_complete_run(world: World):
    close = await world.stream(world.url(), socket_with(CONNECTED, start_message(), STOP))
    assert close == Close(1000, "")
    [run] = await world.runs()
    assert re.fullmatch(r"WR-AGS-\d{8}", run.name)
    assert run.state is RunState.COMPLETED
    assert (run.call_type, run.mode, run.end_reason, run.close_code) == (
        "inbound",
        "cloudonix",
        "caller_hangup",
        1000,
    )
    assert run.initial_context == {
        "company": "Acme",
        "caller_number": "+15555550100",
        "called_number": "+15555550199",
        "provider": "cloudonix",
        "direction": "inbound",
    }
    assert run.gathered_context["call_id"] == "call-77"
    assert run.logs["inbound_webhook"] == {"domain": "acme"}
    assert run.logs["stream"]["session"] == "S-1"
    assert run.logs["stream"]["streamSid"] == "MZ-1"
    assert run.started_at is not None and run.ended_at is not None
    assert world.sessions.validated == [("acme.cloudonix.net", "S-1")]
    assert await world.live_slots() == 0


async def test_peer_closing_without_stop_ends_the_run_completed(world: World):
    socket = socket_with(CONNECTED, start_message())
    socket.end()
    assert await world.stream(world.url(), socket) == Close(1000, "")
    [run] = await world.runs()
    assert (run.state, run.end_reason) == (RunState.COMPLETED, "caller_hangup")


# Refusals before a run exists: (query overrides, agent, code, reason)
ROUTING = [
    pytest.param({"provider": "skype"}, None, 1008, "Unknown provider: skype", id="unknown-provider"),
    pytest.param({"provider": "<absent>"}, None, 1008, "Unknown provider:", id="missing-provider"),
    pytest.param({}, "random-uuid", 1008, "Workflow not found", id="workflow-not-found"),
    pytest.param({}, "not-a-uuid", 1008, "Workflow not found", id="agent-not-a-uuid"),
]


@pytest.mark.parametrize(("query", "agent", "code", "reason"), ROUTING)
async def test_routing_refusals_mint_no_run(world: World, query, agent, code, reason):
    agent_id = str(uuid4()) if agent == "random-uuid" else agent
    close = await world.stream(world.url(agent_id, **query), socket_with(CONNECTED, start_message()))
    assert close == Close(code, reason)
    assert await world.runs() == []
    assert await world.live_slots() == 0


async def test_call_limit_reached_is_1008():
    world = await build_world(max_calls=0)
    close = await world.stream(world.url(), socket_with(CONNECTED, start_message()))
    assert close == Close(1008, "Concurrent call limit reached")
    assert await world.runs() == []


async def test_quota_exceeded_is_1008_and_releases_the_slot():
    world = await build_world(minutes=0)
    close = await world.stream(world.url(), socket_with(CONNECTED, start_message()))
    assert close == Close(1008, "Quota exceeded")
    assert await world.runs() == []
    assert await world.live_slots() == 0


async def test_used_up_minutes_refuse_the_next_call():
    world = await build_world(minutes=1)
    world.clock.advance(0)
    socket = socket_with(CONNECTED, start_message())

    async def caller_hangs_up_after_a_minute() -> None:
        await asyncio.sleep(0.05)
        world.clock.advance(61)
        socket.feed_json(STOP)

    hang_up = asyncio.create_task(caller_hangs_up_after_a_minute())
    assert await world.stream(world.url(), socket) == Close(1000, "")
    await hang_up
    close = await world.stream(world.url(), socket_with(CONNECTED, start_message()))
    assert close == Close(1008, "Quota exceeded")


async def test_the_path_provider_wins(world: World):
    close = await world.stream(
        world.url(provider="twilio", path_provider="cloudonix"), socket_with(CONNECTED, start_message(), STOP)
    )
    assert close == Close(1000, "")


async def test_a_known_provider_without_agent_stream_fails_the_run_1011(world: World):
    close = await world.stream(world.url(provider="twilio"), socket_with(CONNECTED, start_message()))
    assert close == Close(1011, "Agent-stream not supported for provider twilio")
    [run] = await world.runs()
    assert (run.state, run.close_code, run.close_reason, run.end_reason) == (
        RunState.FAILED,
        1011,
        "Agent-stream not supported for provider twilio",
        "error",
    )
    assert run.mode == "twilio"
    assert await world.live_slots() == 0


# Handshake refusals after the run is minted: (query overrides, messages, reason)
HANDSHAKE = [
    pytest.param(
        {"Domain": "<absent>"},
        [CONNECTED, start_message(account_sid=None)],
        "Missing Domain",
        id="missing-domain",
    ),
    pytest.param(
        {"Domain": "other"},
        [CONNECTED, start_message()],
        "Unknown Cloudonix domain: other.cloudonix.net",
        id="unknown-domain",
    ),
    pytest.param({}, [start_message()], "Expected connected event", id="start-before-connected"),
    pytest.param(
        {},
        [CONNECTED, {"event": "media", "media": {"payload": ""}}],
        "Expected start event",
        id="media-before-start",
    ),
    pytest.param({}, ["{not json"], "Invalid JSON in handshake message", id="invalid-json"),
    pytest.param({}, [CONNECTED, {"event": "start"}], "Missing start metadata", id="start-without-metadata"),
    pytest.param(
        {}, [CONNECTED, start_message(callSid=None)], "Missing stream identifiers", id="no-call-sid"
    ),
    pytest.param(
        {"Domain": "<absent>"},
        [CONNECTED, start_message(account_sid="")],
        "Missing Cloudonix domain in start message",
        id="empty-account-sid",
    ),
    pytest.param(
        {},
        [CONNECTED, start_message(mediaFormat={"encoding": "audio/L16", "sampleRate": 16000})],
        "Unsupported media format: encoding audio/L16",
        id="unsupported-encoding",
    ),
    pytest.param(
        {},
        [CONNECTED, start_message(session="S-unknown")],
        "Cloudonix session validation failed",
        id="session-not-valid",
    ),
    pytest.param({}, [CONNECTED], "Handshake timeout", id="no-start-in-time"),
    pytest.param({}, [], "Handshake timeout", id="nothing-in-time"),
]


@pytest.mark.parametrize(("query", "messages", "reason"), HANDSHAKE)
async def test_handshake_refusals_are_4400_and_fail_the_run(world: World, query, messages, reason):
    world.handshake_timeout = 0.1
    close = await world.stream(world.url(**query), socket_with(*messages))
    assert close == Close(4400, reason)
    [run] = await world.runs()
    assert (run.state, run.close_code, run.close_reason, run.end_reason) == (
        RunState.FAILED,
        4400,
        reason,
        "error",
    )
    assert run.ended_at is not None
    assert await world.live_slots() == 0


async def test_peer_closing_during_handshake_fails_the_run(world: World):
    socket = socket_with(CONNECTED)
    socket.end()
    close = await world.stream(world.url(), socket)
    assert close.code == 4400
    [run] = await world.runs()
    assert run.state is RunState.FAILED


async def test_configuration_without_token_is_4400(world: World):
    assert world.organization.id is not None
    await world.store.telephony_configs.add(
        TelephonyConfig(
            organization_id=world.organization.id,
            provider=Provider.CLOUDONIX,
            domain_id="empty-token.cloudonix.net",
            bearer_token=SecretStr(""),
        )
    )
    close = await world.stream(world.url(Domain="empty-token"), socket_with(CONNECTED, start_message()))
    assert close == Close(4400, "Cloudonix configuration missing bearer_token")
    [run] = await world.runs()
    assert run.state is RunState.FAILED


async def test_domain_falls_back_to_start_account_sid(world: World):
    close = await world.stream(world.url(Domain="<absent>"), socket_with(CONNECTED, start_message(), STOP))
    assert close == Close(1000, "")
    [run] = await world.runs()
    assert run.logs["inbound_webhook"]["domain"] is None
    assert run.logs["inbound_webhook"]["domain_from_start"] == "acme"


async def test_another_organisations_configuration_is_never_used(world: World):
    other = await world.store.organizations.add(Organization(name="org-b"))
    assert other.id is not None
    await world.store.organizations.add_user(User(organization_id=other.id))
    await world.store.telephony_configs.add(TelephonyConfig.cloudonix(other.id, "shared", "token-of-org-b"))
    world.sessions.add_session("shared.cloudonix.net", "S-1", "token-of-org-b")
    close = await world.stream(world.url(Domain="shared"), socket_with(CONNECTED, start_message()))
    assert close == Close(4400, "Unknown Cloudonix domain: shared.cloudonix.net")
    assert world.sessions.validated == []  # org B's token was never used


async def test_concurrent_limit_counts_live_calls_and_frees_on_end():
    world = await build_world(max_calls=1)
    first = socket_with(CONNECTED, start_message())
    first_call = asyncio.create_task(world.stream(world.url(), first))
    await asyncio.sleep(0.05)
    assert await world.live_slots() == 1
    assert await world.stream(world.url(), socket_with(CONNECTED, start_message())) == Close(
        1008, "Concurrent call limit reached"
    )
    first.feed_json(STOP)
    assert await first_call == Close(1000, "")
    assert await world.live_slots() == 0
    assert await world.stream(world.url(), socket_with(CONNECTED, start_message(), STOP)) == Close(1000, "")


class BrokenSocket(InMemoryCallSocket):
    """The provider's socket failing mid-call in a way nobody planned for."""

    async def receive(self) -> str | bytes | None:
        message = await super().receive()
        if message is not None and '"event": "media"' in str(message):
            raise RuntimeError("transport exploded")
        return message


async def test_an_unplanned_failure_closes_1011_and_fails_the_run(world: World):
    socket = BrokenSocket()
    for message in (CONNECTED, start_message(), {"event": "media", "media": {"payload": ""}}):
        socket.feed_json(message)
    close = await world.stream(world.url(), socket)
    assert close == Close(1011, "Internal server error")
    [run] = await world.runs()
    assert (run.state, run.close_code, run.end_reason) == (RunState.FAILED, 1011, "error")
    assert await world.live_slots() == 0


async def test_cancellation_fails_the_run_and_releases_the_slot(world: World):
    from application.agent_stream import AgentStreamCommand

    task = asyncio.create_task(
        world.use_case().execute(AgentStreamCommand(world.url()), socket_with(CONNECTED, start_message()))
    )
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [run] = await world.runs()
    assert run.state is RunState.FAILED
    assert run.close_code == 1011
    assert await world.live_slots() == 0


async def test_repeated_failed_lookups_from_one_client_are_refused_for_a_while(world: World):
    for _ in range(5):
        assert (
            await world.stream(world.url(str(uuid4())), InMemoryCallSocket(), client="6.6.6.6")
        ).reason == ("Workflow not found")
    blocked = await world.stream(world.url(), socket_with(CONNECTED, start_message(), STOP), client="6.6.6.6")
    assert blocked == Close(1008, "Too many failed lookups")
    # another client is unaffected, and the cool-down ends
    assert await world.stream(
        world.url(), socket_with(CONNECTED, start_message(), STOP), client="7.7.7.7"
    ) == Close(1000, "")
    world.clock.advance(61)
    assert await world.stream(
        world.url(), socket_with(CONNECTED, start_message(), STOP), client="6.6.6.6"
    ) == Close(1000, "")


async def test_custom_parameters_never_overwrite_built_ins(world: World):
    start = start_message(customParameters={"crm_id": "42", "caller_number": "+19999999999", "provider": "x"})
    await world.stream(world.url(), socket_with(CONNECTED, start, STOP))
    [run] = await world.runs()
    assert run.initial_context["crm_id"] == "42"
    assert run.initial_context["caller_number"] == "+15555550100"
    assert run.initial_context["provider"] == "cloudonix"


# -- the agent's session around the handshake: prepared on `start` (so its start-up overlaps the
# session validation), run on the call, closed on every path; what it journals lands on the run


class RecordingAgent(AgentPipeline):
    """An engine that notes what happened to it, journals one line, and ends with the caller."""

    def __init__(self, world: World, refusal: Exception | None = None) -> None:
        self.world = world
        self.refusal = refusal
        self.events: list[Any] = []

    def prepare(
        self, definition: AgentDefinition, context: dict[str, Any], journal: CallJournal
    ) -> AgentSession:
        if self.refusal is not None:
            raise self.refusal
        self.events.append(("prepared", list(self.world.sessions.validated), context["called_number"]))
        return RecordingSession(self, journal)

    async def aclose(self) -> None:
        return None


class RecordingSession(AgentSession):
    def __init__(self, agent: RecordingAgent, journal: CallJournal) -> None:
        self.agent = agent
        self.journal = journal

    async def run(self, call: ActiveCall) -> CallOutcome:
        self.agent.events.append("run")
        await self.journal.append([("transcript", {"role": "agent", "text": "Hello"}), ("turns", {"n": 1})])
        async for event in call.events():
            if isinstance(event, StopIn):
                break
        return CallOutcome("caller_hangup")

    async def aclose(self) -> None:
        self.agent.events.append("closed")


async def test_prepared_on_start_before_the_session_is_validated(world: World) -> None:
    agent = world.pipelines["linetest"] = RecordingAgent(world)
    close = await world.stream(world.url(), socket_with(CONNECTED, start_message(), STOP))
    assert close == Close(1000, "")
    assert agent.events == [("prepared", [], "+15555550199"), "run", "closed"]  # before any validation
    [run] = await world.runs()
    assert run.gathered_context["transcript"] == [{"role": "agent", "text": "Hello"}]
    assert run.gathered_context["turns"] == [{"n": 1}]


async def test_an_agent_that_cannot_run_fails_the_run_with_its_reason(world: World) -> None:
    world.pipelines["linetest"] = RecordingAgent(
        world, AgentMisconfiguredError("Missing API key variable: K")
    )
    close = await world.stream(world.url(), socket_with(CONNECTED, start_message(), STOP))
    assert close == Close(1011, "Missing API key variable: K")
    [run] = await world.runs()
    assert (run.state, run.end_reason, run.close_code, run.close_reason) == (
        RunState.FAILED,
        "error",
        1011,
        "Missing API key variable: K",
    )
    assert world.sessions.validated == []  # refused before the provider was asked
    assert await world.live_slots() == 0


async def test_a_refused_handshake_closes_the_prepared_agent(world: World) -> None:
    agent = world.pipelines["linetest"] = RecordingAgent(world)
    close = await world.stream(world.url(), socket_with(CONNECTED, start_message(session="S-unknown")))
    assert close.code == 4400
    assert agent.events == [("prepared", [], "+15555550199"), "closed"]
    [run] = await world.runs()
    assert run.state is RunState.FAILED
