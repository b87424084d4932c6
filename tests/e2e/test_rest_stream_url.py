"""`GET /api/v1/agents/{uuid}/stream-url`: the URL to stream to and the CXML to paste into Cloudonix."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

import httpx

from entrypoints.simulator.standins.cloudonix_api import CloudonixStandIn
from tests.caller import CONNECTED, call, start_event, stop_event
from tests.e2e.conftest import Tenant, TenantFactory


def _url(tenant: Tenant) -> str:
    return f"/api/v1/agents/{tenant.agent_uuid}/stream-url"


async def test_answers_the_stream_url_and_the_cxml(api: httpx.AsyncClient, tenant: Tenant, app_url: str):
    response = await api.get(_url(tenant), params={"domain": tenant.domain}, headers=tenant.auth)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"url", "cxml"}
    host = urlsplit(app_url).netloc
    assert answer["url"] == (
        f"ws://{host}/api/v1/agent-stream/{tenant.agent_uuid}?provider=cloudonix&Domain={tenant.domain}"
    )
    cxml = answer["cxml"]
    assert cxml.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert "&amp;Domain=" in cxml  # the & between query parameters is escaped
    document = ET.fromstring(cxml.split("?>", 1)[1])  # noqa: S314 - our own output
    assert document.tag == "Response"
    assert [child.tag for child in document] == ["Connect", "Pause"]
    stream = document.find("Connect/Stream")
    assert stream is not None
    assert stream.get("url") == answer["url"]
    assert document.find("Pause").get("length") == "40"  # type: ignore[union-attr]


async def test_the_domain_is_encoded_as_given(api: httpx.AsyncClient, tenant: Tenant, tenants: TenantFactory):
    await tenants.add_config(tenant.organization_id, "voice.example.com", "cx-token-voice")
    response = await api.get(_url(tenant), params={"domain": " Voice.Example.com "}, headers=tenant.auth)

    assert response.status_code == 200
    query = parse_qs(urlsplit(response.json()["url"]).query)
    assert query == {"provider": ["cloudonix"], "Domain": ["Voice.Example.com"]}


async def test_the_url_it_gives_takes_a_call(
    api: httpx.AsyncClient, tenant: Tenant, cloudonix: CloudonixStandIn
):
    cloudonix.add_session(tenant.domain, "S-from-cxml")
    answer = (await api.get(_url(tenant), params={"domain": tenant.domain}, headers=tenant.auth)).json()
    stream = ET.fromstring(answer["cxml"].split("?>", 1)[1]).find("Connect/Stream")  # noqa: S314
    assert stream is not None
    url = stream.get("url")
    assert url is not None

    result = await call(
        f"{url}&callId=cx-1&from=%2B15555550100&to=%2B15555550199",
        CONNECTED,
        start_event("S-from-cxml"),
        stop_event(),
    )

    assert (result.code, result.reason) == (1000, "")


async def test_a_missing_domain_is_422_naming_it(api: httpx.AsyncClient, tenant: Tenant):
    missing = await api.get(_url(tenant), headers=tenant.auth)
    empty = await api.get(_url(tenant), params={"domain": ""}, headers=tenant.auth)

    assert missing.status_code == 422
    assert missing.json()["detail"] == "Invalid request: domain: is required"
    assert empty.status_code == 422
    assert empty.json()["detail"].startswith("Invalid request: domain: ")


async def test_a_domain_the_organisation_has_no_configuration_for_is_404(
    api: httpx.AsyncClient, tenant: Tenant, tenants: TenantFactory
):
    other = await tenants.create()  # another organisation's domain is not this one's either

    for domain in ("nosuch", other.domain):
        response = await api.get(_url(tenant), params={"domain": domain}, headers=tenant.auth)

        assert response.status_code == 404, response.text
        assert response.json() == {
            "detail": f"The organisation has no Cloudonix configuration for domain {domain}.cloudonix.net; "
            "add one (POST /api/v1/telephony-configurations) before asking for its stream URL"
        }


async def test_a_domain_that_is_no_domain_name_is_422(api: httpx.AsyncClient, tenant: Tenant):
    response = await api.get(_url(tenant), params={"domain": "a&b=c"}, headers=tenant.auth)

    assert response.status_code == 422
    assert response.json()["detail"].startswith("domain:")


async def test_an_unknown_agent_is_404(api: httpx.AsyncClient, tenant: Tenant):
    response = await api.get(
        f"/api/v1/agents/{uuid.uuid4()}/stream-url", params={"domain": "acme"}, headers=tenant.auth
    )

    assert response.status_code == 404
