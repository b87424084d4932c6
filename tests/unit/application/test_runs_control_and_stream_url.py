"""Live call control from outside the call, the transfer destination rule, the stream URL and CXML."""

from __future__ import annotations

import asyncio
import logging
import xml.etree.ElementTree as ET
from uuid import UUID

import pytest

from adapters.cloudonix.media_stream import TwilioFramedCall
from adapters.memory.call_control import InMemoryCallControlHub
from adapters.memory.calls import InMemoryCallSocket, InMemoryProviderSessions
from adapters.memory.repositories import InMemoryStore
from adapters.system.clock import FixedClock
from application.live_calls import CallNotLiveError, LiveCallRegistry
from application.management import (
    AddCloudonixConfiguration,
    AgentDraft,
    CreateAgent,
    CreateOrganization,
    GetAgent,
    GetRun,
    InvalidInputError,
    NotFoundError,
)
from application.ports.call_control import (
    ControlAction,
    ControlAnswer,
    ControlRequest,
    HolderUnavailableError,
)
from application.ports.live_call import ProviderCallRef
from application.runs_control import (
    CallControl,
    CallControlTasks,
    HangUpRun,
    LocalCallControl,
    TransferRun,
    transfer_destination,
)
from application.stream_url import NoConfigurationError, StreamUrl, bridge_cxml, stream_url
from domain.close_policy import Close
from domain.stream_events import StreamStart
from domain.telephony import SecretStr
from domain.workflow_run import EndReason, RunState, WorkflowRun, run_name
from tests.unit.application.conftest import T0

AGENT = UUID("0b6f8d7e-3c1a-4f0e-9d2b-6a5c4e3f2a1b")
HERE = "instance-a"


@pytest.mark.parametrize(
    "value",
    [
        "+15555550123",
        " +442071838750 ",
        "sip:desk@example.com",
        "sips:desk@example.com;transport=tls",
        "sip:pbx.example.com",
    ],
)
def test_e164_numbers_and_sip_uris_are_destinations(value: str):
    assert transfer_destination(value) == value.strip()


@pytest.mark.parametrize(
    "value",
    [
        "",
        "15555550123",
        "+0155",
        "+1555555012345678",
        "tel:+15555550123",
        "sip:",
        "sip:a b@x",
        'sip:"x"@y',
        "sip:" + "a" * 260,
    ],
)
def test_anything_else_is_not(value: str):
    with pytest.raises(InvalidInputError) as raised:
        transfer_destination(value)
    assert raised.value.field == "destination"


@pytest.mark.parametrize(
    ("public_url", "expected"),
    [
        ("https://agents.example.com", "wss://agents.example.com/api/v1/agent-stream/"),
        ("http://127.0.0.1:8000", "ws://127.0.0.1:8000/api/v1/agent-stream/"),
        ("https://example.com/voice/", "wss://example.com/voice/api/v1/agent-stream/"),
        ("HTTPS://Example.com", "wss://Example.com/api/v1/agent-stream/"),
    ],
)
def test_the_stream_url_follows_the_public_url(public_url: str, expected: str):
    assert stream_url(public_url, AGENT, "acme") == f"{expected}{AGENT}?provider=cloudonix&Domain=acme"


def test_the_query_is_percent_encoded():
    url = stream_url("https://h", AGENT, "a&b c=d")

    assert url.endswith("?provider=cloudonix&Domain=a%26b+c%3Dd")


@pytest.mark.parametrize("public_url", ["ftp://h", "h:8000", "/relative"])
def test_a_public_url_that_is_not_http_is_refused(public_url: str):
    with pytest.raises(ValueError, match="public URL"):
        stream_url(public_url, AGENT, "acme")


def test_the_cxml_escapes_the_url_and_keeps_the_call_up_after_the_stream():
    url = 'wss://h/api/v1/agent-stream/x?provider=cloudonix&Domain=a"<b>'

    cxml = bridge_cxml(url)

    assert cxml.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<Response>')
    assert "&amp;Domain=a&quot;&lt;b&gt;" in cxml
    document = ET.fromstring(cxml.split("?>", 1)[1])  # noqa: S314 - our own output
    assert document.find("Connect/Stream").get("url") == url  # type: ignore[union-attr]
    assert document.find("Pause").get("length") == "40"  # type: ignore[union-attr]


class World:
    def __init__(self) -> None:
        self.store = InMemoryStore()
        self.live = LiveCallRegistry()
        self.tasks = CallControlTasks()
        self.hub = InMemoryCallControlHub()
        self.local = LocalCallControl(self.live, self.tasks)
        self.control = CallControl(self.local, self.hub.join(HERE, self.local.serve), HERE)
        self.provider = InMemoryProviderSessions()
        self.socket = InMemoryCallSocket()

    async def setup(self) -> None:
        org = await CreateOrganization(self.store.organizations, self.store.api_keys).execute("acme")
        self.organization_id = org.organization_id
        other = await CreateOrganization(self.store.organizations, self.store.api_keys).execute("other")
        self.other_id = other.organization_id
        agent = await CreateAgent(self.store.organizations, self.store.workflows, FixedClock(T0)).execute(
            org.organization_id, AgentDraft(name="desk")
        )
        assert agent.id is not None
        self.agent = agent
        run = await self.store.runs.add(
            WorkflowRun(
                name=run_name(1),
                workflow_id=agent.id,
                agent_uuid=agent.uuid,
                mode="cloudonix",
                created_at=T0,
                state=RunState.RUNNING,
                instance_id=HERE,
            )
        )
        assert run.id is not None
        self.run_id = run.id
        self.call = TwilioFramedCall(
            self.socket,
            StreamStart(stream_sid="MZ", call_sid="CA", session="S-1", account_sid="acme"),
            self.provider,
            ProviderCallRef(
                domain="acme.cloudonix.net", session="S-1", bearer_token=SecretStr("t"), caller_id="+1555"
            ),
            hangup_drain_seconds=0,
        )

    def get_run(self) -> GetRun:
        return GetRun(self.store.workflows, self.store.runs)


@pytest.fixture
async def world() -> World:
    w = World()
    await w.setup()
    return w


async def _settled(tasks: CallControlTasks) -> None:
    for _ in range(200):
        if tasks.pending() == 0:
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the call-control task never ended")


async def test_hangup_acts_on_the_live_call_in_the_background(world: World):
    world.live.register(world.run_id, world.call)

    requested = await HangUpRun(world.get_run(), world.control).execute(world.organization_id, world.run_id)
    await _settled(world.tasks)

    assert (requested.action, requested.run.id) == ("hangup", world.run_id)
    assert world.provider.hung_up == [("acme.cloudonix.net", "S-1")]
    assert world.call.ended_by == EndReason.OPERATOR_HANGUP
    assert world.call.closed_with == Close(1000, "Hung up by an operator")
    await world.call.aclose()


async def test_transfer_acts_on_the_live_call_in_the_background(world: World):
    world.live.register(world.run_id, world.call)

    requested = await TransferRun(world.get_run(), world.control).execute(
        world.organization_id, world.run_id, " sip:desk@example.com "
    )
    await _settled(world.tasks)

    assert requested.destination == "sip:desk@example.com"
    assert world.provider.transfers == [("acme.cloudonix.net", "S-1", "sip:desk@example.com")]
    assert world.call.ended_by == EndReason.TRANSFERRED
    await world.call.aclose()


async def test_a_run_without_a_live_call_is_refused(world: World):
    with pytest.raises(CallNotLiveError):
        await HangUpRun(world.get_run(), world.control).execute(world.organization_id, world.run_id)
    with pytest.raises(CallNotLiveError):
        await TransferRun(world.get_run(), world.control).execute(
            world.organization_id, world.run_id, "+15555550123"
        )
    await world.call.aclose()


async def test_another_organisation_is_told_not_found_even_while_live(world: World):
    world.live.register(world.run_id, world.call)

    with pytest.raises(NotFoundError):
        await HangUpRun(world.get_run(), world.control).execute(world.other_id, world.run_id)
    with pytest.raises(NotFoundError):
        await TransferRun(world.get_run(), world.control).execute(
            world.other_id, world.run_id, "+15555550123"
        )

    assert world.tasks.pending() == 0
    assert world.provider.hung_up == []
    await world.call.aclose()


async def test_a_failed_action_is_logged_not_raised(world: World, caplog: pytest.LogCaptureFixture):
    world.provider.fail_hang_up = True
    world.live.register(world.run_id, world.call)
    world.call.ended_by = EndReason.AGENT_HANGUP  # a transfer after the call ended fails

    with caplog.at_level(logging.INFO, logger="application.runs_control"):
        await TransferRun(world.get_run(), world.control).execute(
            world.organization_id, world.run_id, "+15555550123"
        )
        await _settled(world.tasks)

    assert [r.message for r in caplog.records if r.levelno >= logging.ERROR] == ["call_control_failed"]
    await world.call.aclose()


async def test_closing_cancels_what_is_under_way():
    tasks = CallControlTasks()
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.sleep(3600)

    tasks.start("WR-AGS-00000001", "x", forever)
    await started.wait()
    await tasks.aclose()

    assert tasks.pending() == 0


async def test_stream_url_use_case_is_scoped_and_checks_the_domain(world: World):
    address = StreamUrl(
        GetAgent(world.store.workflows), world.store.telephony_configs, "https://agents.example.com"
    )
    await AddCloudonixConfiguration(world.store.telephony_configs).execute(world.organization_id, "acme", "T")

    found = await address.execute(world.organization_id, world.agent.uuid, " acme ")

    assert (
        found.url
        == f"wss://agents.example.com/api/v1/agent-stream/{world.agent.uuid}?provider=cloudonix&Domain=acme"
    )
    assert found.cxml == bridge_cxml(found.url)
    with pytest.raises(NotFoundError):
        await address.execute(world.other_id, world.agent.uuid, "acme")
    with pytest.raises(InvalidInputError):
        await address.execute(world.organization_id, world.agent.uuid, "a b")
    with pytest.raises(
        NoConfigurationError, match=r"no Cloudonix configuration for domain nosuch\.cloudonix\.net"
    ):
        await address.execute(world.organization_id, world.agent.uuid, "nosuch")
    await world.call.aclose()


# -- across instances: the run names another instance as its holder ------------------------------


class Instance:
    """Another instance of the service on the same hub: its own live calls and control tasks."""

    def __init__(self, hub: InMemoryCallControlHub, instance_id: str, ack_timeout: float = 2.5) -> None:
        self.live = LiveCallRegistry()
        self.tasks = CallControlTasks()
        self.local = LocalCallControl(self.live, self.tasks)
        self.channel = hub.join(instance_id, self.local.serve, ack_timeout)


async def _held_by(world: World, instance_id: str, state: RunState = RunState.RUNNING) -> None:
    run = await world.store.runs.get(world.run_id)
    assert run is not None
    run.instance_id = instance_id
    run.state = state
    await world.store.runs.save(run)


async def test_a_hangup_asked_of_one_instance_ends_the_call_another_holds(world: World):
    other = Instance(world.hub, "instance-b")
    other.live.register(world.run_id, world.call)
    await _held_by(world, "instance-b")

    requested = await HangUpRun(world.get_run(), world.control).execute(world.organization_id, world.run_id)
    await _settled(other.tasks)

    assert requested.action == "hangup"
    assert world.provider.hung_up == [("acme.cloudonix.net", "S-1")]
    assert world.call.ended_by == EndReason.OPERATOR_HANGUP
    assert world.tasks.pending() == 0  # the holder acted, not the instance that was asked
    await world.call.aclose()


async def test_a_transfer_goes_to_the_holder_with_its_destination(world: World):
    other = Instance(world.hub, "instance-b")
    other.live.register(world.run_id, world.call)
    await _held_by(world, "instance-b")

    await TransferRun(world.get_run(), world.control).execute(
        world.organization_id, world.run_id, "+15555550123"
    )
    await _settled(other.tasks)

    assert world.provider.transfers == [("acme.cloudonix.net", "S-1", "+15555550123")]
    assert world.call.ended_by == EndReason.TRANSFERRED
    await world.call.aclose()


async def test_the_holder_without_the_call_is_a_conflict(world: World):
    Instance(world.hub, "instance-b")  # running, but the call is not live there
    await _held_by(world, "instance-b")

    with pytest.raises(CallNotLiveError):
        await HangUpRun(world.get_run(), world.control).execute(world.organization_id, world.run_id)
    with pytest.raises(CallNotLiveError):
        await TransferRun(world.get_run(), world.control).execute(
            world.organization_id, world.run_id, "+15555550123"
        )
    await world.call.aclose()


async def test_a_holder_that_is_gone_is_unavailable_not_accepted(world: World):
    await _held_by(world, "instance-gone")

    with pytest.raises(HolderUnavailableError):
        await HangUpRun(world.get_run(), world.control).execute(world.organization_id, world.run_id)
    with pytest.raises(HolderUnavailableError):
        await TransferRun(world.get_run(), world.control).execute(
            world.organization_id, world.run_id, "+15555550123"
        )
    await world.call.aclose()


async def test_a_holder_that_does_not_answer_in_time_is_unavailable(world: World):
    stuck = asyncio.Event()

    async def never_answers(_: ControlRequest) -> ControlAnswer:
        await stuck.wait()
        return ControlAnswer.TAKEN

    world.hub.join("instance-b", never_answers)
    control = CallControl(world.local, world.hub.join(HERE, world.local.serve, ack_timeout=0.2), HERE)
    await _held_by(world, "instance-b")

    began = asyncio.get_running_loop().time()
    with pytest.raises(HolderUnavailableError):
        await HangUpRun(world.get_run(), control).execute(world.organization_id, world.run_id)

    assert asyncio.get_running_loop().time() - began >= 0.19  # waited for the bound, no sooner
    await world.call.aclose()


@pytest.mark.parametrize("state", [RunState.COMPLETED, RunState.FAILED])
async def test_an_ended_run_is_a_conflict_without_asking_its_holder(world: World, state: RunState):
    await _held_by(world, "instance-gone", state)  # a gone holder would be a 503 if it were asked

    with pytest.raises(CallNotLiveError):
        await HangUpRun(world.get_run(), world.control).execute(world.organization_id, world.run_id)
    await world.call.aclose()


async def test_another_organisation_is_told_not_found_before_any_instance_is_asked(world: World):
    other = Instance(world.hub, "instance-b")
    other.live.register(world.run_id, world.call)
    await _held_by(world, "instance-b")

    with pytest.raises(NotFoundError):
        await HangUpRun(world.get_run(), world.control).execute(world.other_id, world.run_id)

    assert other.tasks.pending() == 0
    assert world.provider.hung_up == []
    await world.call.aclose()


async def test_the_holder_refuses_a_destination_it_would_not_accept_itself(world: World):
    other = Instance(world.hub, "instance-b")
    other.live.register(world.run_id, world.call)
    request = ControlRequest(world.run_id, run_name(1), ControlAction.TRANSFER, "tel:+15555550123")

    assert await world.hub.join(HERE, world.local.serve).ask("instance-b", request) is ControlAnswer.NOT_LIVE
    assert other.tasks.pending() == 0
    await world.call.aclose()


async def test_an_instance_that_left_the_hub_no_longer_answers(world: World):
    other = Instance(world.hub, "instance-b")
    other.live.register(world.run_id, world.call)
    request = ControlRequest(world.run_id, run_name(1), ControlAction.HANGUP)
    asking = world.hub.join(HERE, world.local.serve)

    assert await asking.ask("instance-b", request) is ControlAnswer.TAKEN
    await _settled(other.tasks)
    other.channel.close()
    with pytest.raises(HolderUnavailableError):
        await asking.ask("instance-b", request)
    await world.call.aclose()
