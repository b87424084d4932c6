"""The agent's session around the handshake: prepared on `start` (so its start-up overlaps the
session validation), run on the call, closed on every path; what it journals lands on the run."""

from __future__ import annotations

from typing import Any

from application.ports.live_call import ActiveCall, AgentPipeline, AgentSession, CallJournal, CallOutcome
from domain.agents import AgentDefinition
from domain.close_policy import AgentMisconfiguredError, Close
from domain.stream_events import StopIn
from domain.workflow_run import RunState
from tests.unit.application.conftest import CONNECTED, STOP, World, socket_with, start_message


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
