"""Use cases wired by hand to the in-memory adapters (no container, no mocks of our code)."""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from adapters.cloudonix.media_stream import TwilioFramedCalls
from adapters.media.twilio import caller as wire
from adapters.media.twilio.handshake import TwilioHandshakeReader
from adapters.memory.calls import InMemoryCallSocket, InMemoryProviderSessions
from adapters.memory.repositories import InMemoryStore
from adapters.memory.run_feed import InMemoryRunFeed
from adapters.pipelines.linetest import LineTestPipeline
from adapters.recording.recorder import SpoolRecorder
from adapters.recording.stores import FolderRecordingStore
from adapters.system.clock import FixedClock, SequentialRunNumbers
from application.admission import Load, LoopLag
from application.agent_stream import AgentStream, AgentStreamCommand, PipelineRegistry, ThisInstance
from application.cloudonix_handshake import CloudonixHandshake
from application.instance_life import InstanceIdentity, InstanceLife
from application.live_calls import LiveCallRegistry
from application.ports.system import NoCallMetrics
from application.providers import ProviderRegistry
from domain.agents import AgentDefinition, Organization, User, Workflow, WorkflowStatus
from domain.close_policy import Close
from domain.lookup_guard import LookupFailureWindow
from domain.stream_events import StreamStart
from domain.stream_request import AgentStreamRequest
from domain.telephony import TelephonyConfig
from domain.workflow_run import WorkflowRun

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TOKEN = "cx-bearer-token-of-org-a"


def start_message(session: str = "S-1", account_sid: str | None = "acme", **extra: Any) -> dict[str, Any]:
    """Cloudonix's `start`; `extra` replaces or adds raw `start` fields."""
    message = wire.start_message(
        StreamStart(
            stream_sid="MZ-1",
            call_sid="CA-1",
            session=session,
            account_sid=account_sid,
            caller_number="+15555550100",
            called_number="+15555550199",
            tracks=("inbound",),
        )
    )
    message["start"].update(extra)
    return message


CONNECTED = wire.connected_message()
STOP = wire.stop_message("MZ-1", sequence_number="9", call_sid="CA-1")


@dataclass
class World:
    store: InMemoryStore
    sessions: InMemoryProviderSessions
    clock: FixedClock
    guard: LookupFailureWindow
    organization: Organization
    workflow: Workflow
    handshake_timeout: float = 1.0
    pipelines: dict[str, Any] = field(default_factory=dict)
    live_calls: LiveCallRegistry = field(default_factory=LiveCallRegistry)
    load: Load = field(default_factory=lambda: Load(LoopLag(busy_above_seconds=0.15)))
    life: InstanceLife | None = None
    recordings: Path = Path(tempfile.gettempdir()) / "agent-stream-unit-recordings"  # made at first use
    feed: InMemoryRunFeed = field(default_factory=InMemoryRunFeed)

    def __post_init__(self) -> None:
        identity = InstanceIdentity("test-instance", "test-host:8000", ttl_seconds=30)
        self.life = InstanceLife(
            identity, self.store.instances, self.store.slots, self.store.runs, self.clock, feed=self.feed
        )

    def live_run(
        self,
        instance_id: str | None = None,
        *,
        workflow: Workflow | None = None,
        gathered: dict[str, Any] | None = None,
    ) -> WorkflowRun:
        """A run as a call on `instance_id` leaves it while live (minted, running), not stored yet;
        of `workflow`, by default the world's agent."""
        workflow = workflow or self.workflow
        run = WorkflowRun(
            name="WR-AGS-00000001",
            workflow_id=workflow.stored_id,
            agent_uuid=workflow.uuid,
            mode="cloudonix",
            created_at=self.clock.now(),
            gathered_context=dict(gathered or {}),
            instance_id=instance_id,
        )
        run.start(self.clock.now())
        return run

    def use_case(self) -> AgentStream:
        handshake = CloudonixHandshake(
            self.store.telephony_configs,
            self.sessions,
            TwilioFramedCalls(),
            TwilioHandshakeReader(),
            self.handshake_timeout,
        )
        return AgentStream(
            self.store.routes,
            self.store.runs,
            self.store.slots,
            ProviderRegistry({"cloudonix": handshake}),
            PipelineRegistry({"linetest": LineTestPipeline(), **self.pipelines}),
            self.clock,
            SequentialRunNumbers(42),
            instance=ThisInstance(self.life, self.live_calls, self.load),
            lookup_guard=self.guard,
            metrics=NoCallMetrics(),
            recorder=SpoolRecorder(
                FolderRecordingStore(self.recordings), self.recordings / ".partial", "http://agents.test"
            ),
            feed=self.feed,
        )

    def url(
        self, agent: str | None = None, path_provider: str | None = None, **query: str
    ) -> AgentStreamRequest:
        params = {
            "provider": "cloudonix",
            "Domain": "acme",
            "callId": "call-77",
            "from": "+15555550100",
            "to": "+15555550199",
        }
        params.update(query)
        params = {k: v for k, v in params.items() if v != "<absent>"}
        return AgentStreamRequest.parse(agent or str(self.workflow.uuid), params, path_provider)

    async def stream(
        self, request: AgentStreamRequest, socket: InMemoryCallSocket, client: str = "10.0.0.1"
    ) -> Close:
        return await asyncio.wait_for(
            self.use_case().execute(AgentStreamCommand(request, client), socket), timeout=10
        )

    async def runs(self) -> list[WorkflowRun]:
        assert self.workflow.id is not None
        return await self.store.runs.list_for_workflow(self.workflow.id, 100)

    async def live_slots(self) -> int:
        assert self.organization.id is not None
        return await self.store.slots.live_count(self.organization.id, self.clock.now())


async def build_world(max_calls: int = 10, minutes: int = 1000, token: str = TOKEN) -> World:
    store = InMemoryStore()
    org = await store.organizations.add(Organization(name="org-a", max_concurrent_calls=max_calls))
    assert org.id is not None
    user = await store.organizations.add_user(User(organization_id=org.id, monthly_minutes=minutes))
    assert user.id is not None
    workflow = await store.workflows.add(
        Workflow(
            uuid=uuid4(),
            organization_id=org.id,
            user_id=user.id,
            name="front desk",
            definition=AgentDefinition(),
            status=WorkflowStatus.DRAFT,
            template_variables={"company": "Acme"},
            created_at=T0,
            updated_at=T0,
        )
    )
    await store.telephony_configs.add(TelephonyConfig.cloudonix(org.id, "acme", token))
    sessions = InMemoryProviderSessions()
    sessions.add_session("acme.cloudonix.net", "S-1", TOKEN)
    return World(store, sessions, FixedClock(T0), LookupFailureWindow(limit=5), org, workflow)


@pytest.fixture
async def world() -> World:
    return await build_world()


def socket_with(*messages: dict[str, Any] | str) -> InMemoryCallSocket:
    socket = InMemoryCallSocket()
    for message in messages:
        if isinstance(message, str):
            socket.feed(message)
        else:
            socket.feed_json(message)
    return socket
