"""`/api/v1/telephony-configurations` over HTTP: normalised, masked, encrypted at rest."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.sql.models import TelephonyConfigRow
from adapters.system.crypto import FernetCredentialCipher
from domain.telephony import SecretStr
from entrypoints.simulator.standins.cloudonix_api import CloudonixStandIn
from tests.caller import CONNECTED, call, start_event, stop_event
from tests.e2e.conftest import SECRET_KEY, Tenant, TenantFactory
from tests.factories import TelephonyConfigurationCreateFactory

CONFIGS = "/api/v1/telephony-configurations"


async def _create(api: httpx.AsyncClient, tenant: Tenant, **overrides: Any) -> dict[str, Any]:
    response = await api.post(
        CONFIGS, json=TelephonyConfigurationCreateFactory.body(**overrides), headers=tenant.auth
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_create_normalises_the_domain_and_masks_the_token(api: httpx.AsyncClient, tenant: Tenant):
    token = "XI" + secrets.token_hex(16)
    domain = f"Tenant{secrets.token_hex(4)}"

    response = await api.post(
        CONFIGS,
        json={"provider": "cloudonix", "domain_id": f"  {domain}  ", "bearer_token": token, "name": "Main"},
        headers=tenant.auth,
    )

    assert response.status_code == 201, response.text
    config = response.json()
    assert set(config) == {"id", "provider", "domain_id", "name", "bearer_token"}
    assert config["provider"] == "cloudonix"
    assert config["domain_id"] == f"{domain.lower()}.cloudonix.net"
    assert config["name"] == "Main"
    assert config["bearer_token"] == SecretStr(token).masked()
    assert config["bearer_token"].startswith(token[:4])
    assert config["bearer_token"].endswith(token[-4:])
    assert token not in response.text


async def test_a_custom_fqdn_is_kept_and_names_the_configuration_by_default(
    api: httpx.AsyncClient, tenant: Tenant
):
    domain = f"Voice{secrets.token_hex(3)}.Example.COM."

    config = await _create(api, tenant, domain_id=domain, name="")

    assert config["domain_id"] == domain.lower().rstrip(".")
    assert config["name"] == config["domain_id"]


async def test_list_masks_every_token(api: httpx.AsyncClient, tenants: TenantFactory):
    tenant, other = await tenants.create(), await tenants.create()
    body = TelephonyConfigurationCreateFactory.body()
    await api.post(CONFIGS, json=body, headers=tenant.auth)
    await _create(api, other)

    response = await api.get(CONFIGS, headers=tenant.auth)

    assert response.status_code == 200
    listed = response.json()
    assert [c["domain_id"] for c in listed] == [
        f"{tenant.domain}.cloudonix.net",
        f"{body['domain_id']}.cloudonix.net",
    ]
    assert tenant.token not in response.text
    assert body["bearer_token"] not in response.text
    assert [c["bearer_token"] for c in listed] == [
        SecretStr(tenant.token).masked(),
        SecretStr(body["bearer_token"]).masked(),
    ]


async def test_a_second_configuration_of_a_domain_is_409(api: httpx.AsyncClient, tenant: Tenant):
    again = await api.post(
        CONFIGS,
        json={
            "provider": "cloudonix",
            "domain_id": f"{tenant.domain}.cloudonix.net.",
            "bearer_token": "other",
        },
        headers=tenant.auth,
    )

    assert again.status_code == 409, again.text
    assert "exists already" in again.json()["detail"]
    assert "other" not in again.text


async def test_another_organisation_may_configure_the_same_domain(
    api: httpx.AsyncClient, tenant: Tenant, tenants: TenantFactory
):
    other = await tenants.create()

    response = await api.post(
        CONFIGS,
        json={"provider": "cloudonix", "domain_id": tenant.domain, "bearer_token": "cx-of-the-other-org"},
        headers=other.auth,
    )

    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"domain_id": "   "}, "domain_id"),
        ({"domain_id": "a b"}, "domain_id"),
        ({"domain_id": "acme/../x"}, "domain_id"),
        ({"bearer_token": "   "}, "bearer_token"),
        ({"bearer_token": "two words"}, "bearer_token"),
        ({"name": "nul\u0000"}, "name"),
    ],
)
async def test_bad_values_are_422_naming_the_field(
    api: httpx.AsyncClient, tenant: Tenant, overrides: dict[str, Any], field: str
):
    response = await api.post(
        CONFIGS, json=TelephonyConfigurationCreateFactory.body(**overrides), headers=tenant.auth
    )

    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(f"{field}:")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"provider": "twilio", "domain_id": "acme", "bearer_token": "t"}, "provider"),
        ({"domain_id": "acme", "bearer_token": "t"}, "provider"),
        ({"provider": "cloudonix", "bearer_token": "t"}, "domain_id"),
        ({"provider": "cloudonix", "domain_id": "acme"}, "bearer_token"),
        ({"provider": "cloudonix", "domain_id": "", "bearer_token": "t"}, "domain_id"),
        ({"provider": "cloudonix", "domain_id": "acme", "bearer_token": "t", "token": "t"}, "token"),
    ],
)
async def test_a_malformed_body_is_422_naming_the_field(
    api: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any], field: str
):
    response = await api.post(CONFIGS, json=body, headers=tenant.auth)

    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(f"Invalid request: {field}: "), response.text


async def test_delete_removes_the_configuration(api: httpx.AsyncClient, tenant: Tenant):
    created = await _create(api, tenant)

    deleted = await api.delete(f"{CONFIGS}/{created['id']}", headers=tenant.auth)

    assert deleted.status_code == 204
    assert deleted.content == b""
    listed = (await api.get(CONFIGS, headers=tenant.auth)).json()
    assert created["id"] not in [c["id"] for c in listed]
    again = await api.delete(f"{CONFIGS}/{created['id']}", headers=tenant.auth)
    assert again.status_code == 404
    assert again.json() == {"detail": "Telephony configuration not found"}


async def test_delete_of_an_unknown_id_is_404(api: httpx.AsyncClient, tenant: Tenant):
    assert (await api.delete(f"{CONFIGS}/{2**52}", headers=tenant.auth)).status_code == 404
    assert (await api.delete(f"{CONFIGS}/0", headers=tenant.auth)).status_code == 422


async def test_the_token_is_encrypted_in_the_database_row(
    api: httpx.AsyncClient, tenant: Tenant, sessions: async_sessionmaker[AsyncSession]
):
    token = "cx-" + secrets.token_urlsafe(24)
    created = await _create(api, tenant, bearer_token=token)

    async with sessions() as session:
        stored = await session.scalar(
            select(TelephonyConfigRow.bearer_token).where(TelephonyConfigRow.id == created["id"])
        )

    assert stored is not None
    assert token not in stored
    assert token[3:15] not in stored
    assert stored.startswith("v1:")
    assert FernetCredentialCipher(SECRET_KEY).decrypt(stored) == token


async def test_a_configuration_made_through_the_api_serves_calls(
    api: httpx.AsyncClient, tenant: Tenant, cloudonix: CloudonixStandIn
):
    """The stream decrypts the stored token and presents it to Cloudonix."""
    domain, token = f"viaapi{secrets.token_hex(4)}", "cx-" + secrets.token_urlsafe(20)
    await _create(api, tenant, domain_id=domain, bearer_token=token)
    cloudonix.add_domain(domain, token)
    cloudonix.add_session(domain, "S-api")

    result = await call(
        tenant.stream_url(Domain=domain), CONNECTED, start_event("S-api", account_sid=domain), stop_event()
    )

    assert (result.code, result.reason) == (1000, "")
    [validate] = cloudonix.requests_for("validate")
    assert validate.headers["authorization"] == f"Bearer {token}"
