"""`agent-stream demo`'s set-up, on the in-memory adapters: what it creates, what a second run
reuses, the state file it keeps, and what it prints."""

from __future__ import annotations

import os
import shlex
import stat
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest

from adapters.memory.repositories import InMemoryStore
from adapters.system.clock import FixedClock
from application.management import AddCloudonixConfiguration, CreateAgent, CreateOrganization
from domain.api_keys import hash_api_key
from domain.telephony import Provider
from entrypoints.demo import (
    DEMO_DEFINITION,
    Demo,
    DemoError,
    DemoPorts,
    DemoState,
    banner,
    call_command,
    ensure_demo,
    load_state,
    save_state,
    state_path,
)
from entrypoints.settings import Settings


def ports(store: InMemoryStore) -> DemoPorts:
    clock = FixedClock(datetime(2026, 11, 25, tzinfo=UTC))
    return DemoPorts(
        organizations=store.organizations,
        workflows=store.workflows,
        configs=store.telephony_configs,
        api_keys=store.api_keys,
        create_organization=CreateOrganization(store.organizations, store.api_keys),
        create_agent=CreateAgent(store.organizations, store.workflows, clock),
        add_cloudonix=AddCloudonixConfiguration(store.telephony_configs),
    )


async def test_a_first_run_creates_the_organisation_agent_and_configuration() -> None:
    store = InMemoryStore()
    demo = await ensure_demo(ports(store), None)
    assert demo.created
    agent = await store.workflows.get_by_uuid(UUID(demo.state.agent_uuid))
    assert agent is not None
    assert agent.organization_id == demo.state.organization_id
    assert agent.definition.to_dict() == DEMO_DEFINITION
    assert agent.status.value == "published"
    config = await store.telephony_configs.find_by_domain(
        demo.state.organization_id, Provider.CLOUDONIX, "demo.cloudonix.net"
    )
    assert config is not None
    assert config.bearer_token.reveal() == demo.state.cloudonix_token
    assert await store.api_keys.organization_for(hash_api_key(demo.api_key)) == demo.state.organization_id


async def test_a_second_run_reuses_everything_and_mints_a_new_working_key() -> None:
    store = InMemoryStore()
    first = await ensure_demo(ports(store), None)
    second = await ensure_demo(ports(store), first.state)
    assert not second.created
    assert second.state == first.state
    assert second.api_key != first.api_key
    for key in (first.api_key, second.api_key):
        assert await store.api_keys.organization_for(hash_api_key(key)) == first.state.organization_id
    assert len(await store.workflows.list_for_organization(first.state.organization_id)) == 1


async def test_a_missing_configuration_is_added_back() -> None:
    store = InMemoryStore()
    first = await ensure_demo(ports(store), None)
    [config] = await store.telephony_configs.list_for_organization(first.state.organization_id)
    assert config.id is not None
    await store.telephony_configs.delete(first.state.organization_id, config.id)
    await ensure_demo(ports(store), first.state)
    assert len(await store.telephony_configs.list_for_organization(first.state.organization_id)) == 1


async def test_state_naming_a_vanished_database_starts_afresh() -> None:
    stale = DemoState(organization_id=41, agent_uuid=str(UUID(int=7)), cloudonix_token="old")
    demo = await ensure_demo(ports(InMemoryStore()), stale)
    assert demo.created
    assert demo.state.agent_uuid != stale.agent_uuid


def test_the_state_lives_beside_the_sqlite_file_or_in_the_working_directory() -> None:
    assert state_path("sqlite+aiosqlite:///./agent-stream.db") == Path("./agent-stream.db.demo.json")
    assert state_path("sqlite+aiosqlite:////var/lib/as/x.db") == Path("/var/lib/as/x.db.demo.json")
    assert state_path("postgresql+asyncpg://u:p@h/db") == Path("agent-stream-demo.json")
    assert state_path("sqlite+aiosqlite://") == Path("agent-stream-demo.json")


def test_the_state_file_round_trips_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "agent-stream.db.demo.json"
    state = DemoState(3, str(UUID(int=5)), "demo-token", secret_key="k" * 43)
    save_state(path, state)
    assert load_state(path) == state
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_state(tmp_path / "absent.json") is None


def test_a_damaged_state_file_is_reported_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text('{"organization_id": "x"}')
    with pytest.raises(DemoError, match="is not a demo state file"):
        load_state(path)
    assert path.read_text() == '{"organization_id": "x"}'


def test_the_printed_call_command_is_one_shell_word_per_argument() -> None:
    url = f"ws://127.0.0.1:8000/api/v1/agent-stream/{UUID(int=9)}?provider=cloudonix&Domain=demo"
    words = shlex.split(call_command(url))
    assert words == [
        "python3",
        "-m",
        "uv",
        "run",
        "--no-dev",
        "agent-stream",
        "call",
        "--url",
        url,
        "--record",
        "call.wav",
    ]


def test_the_banner_has_the_stream_url_valid_cxml_the_key_and_the_call_command() -> None:
    state = DemoState(1, str(UUID(int=9)), "demo-token")
    settings = Settings(public_url="https://agents.example.com")
    text = banner(settings, Demo(state, "ask_key", created=True), 8123, "http://127.0.0.1:1", Path("s"), "n")
    public = f"wss://agents.example.com/api/v1/agent-stream/{state.agent_uuid}?provider=cloudonix&Domain=demo"
    local = f"ws://127.0.0.1:8123/api/v1/agent-stream/{state.agent_uuid}?provider=cloudonix&Domain=demo"
    lines = [line.strip() for line in text.splitlines()]
    assert public in lines
    assert "ask_key" in text
    cxml = text[text.index("<?xml") : text.index("</Response>") + len("</Response>")]
    assert "&amp;Domain=demo" in cxml
    stream = ET.fromstring(cxml).find("./Connect/Stream")  # noqa: S314 - our own output
    assert stream is not None
    assert stream.get("url") == public
    assert call_command(local) in lines
    assert "Console: http://127.0.0.1:8123/console" in text  # where to watch the call
