"""The stream URL an agent is reached at (it follows the public URL) and the CXML that bridges a
Cloudonix call to it; the use case that answers it for one organisation's agent and domain."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from uuid import UUID

import pytest

from adapters.memory.repositories import InMemoryStore
from adapters.system.clock import FixedClock
from application.management import (
    AddCloudonixConfiguration,
    AgentDraft,
    CreateAgent,
    CreateOrganization,
    GetAgent,
    InvalidInputError,
    NotFoundError,
)
from application.stream_url import NoConfigurationError, StreamUrl, bridge_cxml, stream_url
from domain.agents import Workflow
from tests.unit.application.conftest import T0

AGENT = UUID("0b6f8d7e-3c1a-4f0e-9d2b-6a5c4e3f2a1b")


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


@dataclass
class Tenants:
    """Two organisations; the first owns an agent."""

    store: InMemoryStore
    organization_id: int
    other_id: int
    agent: Workflow


@pytest.fixture
async def world() -> Tenants:
    store = InMemoryStore()
    org = await CreateOrganization(store.organizations, store.api_keys).execute("acme")
    other = await CreateOrganization(store.organizations, store.api_keys).execute("other")
    agent = await CreateAgent(store.organizations, store.workflows, FixedClock(T0)).execute(
        org.organization_id, AgentDraft(name="desk")
    )
    return Tenants(store, org.organization_id, other.organization_id, agent)


async def test_stream_url_use_case_is_scoped_and_checks_the_domain(world: Tenants):
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
