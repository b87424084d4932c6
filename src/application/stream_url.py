"""The agent's stream URL and the CXML document that bridges a Cloudonix call to it (protocol.md §6)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit, urlunsplit
from uuid import UUID

from application.management import GetAgent, NotFoundError, cloudonix_domain
from application.ports.repositories import TelephonyConfigRepository
from domain.telephony import Provider

CXML_PAUSE_SECONDS = 40  # keeps the call up after the socket closes: time for a hang-up or transfer
_WS_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}


def stream_url(public_url: str, agent_uuid: UUID, domain: str) -> str:
    """`wss://host/api/v1/agent-stream/{uuid}?provider=cloudonix&Domain=D` from the public URL.

    http becomes ws and https wss; a path in the public URL (a reverse-proxy prefix) is kept; the
    query is percent-encoded.
    """
    parts = urlsplit(public_url)
    scheme = _WS_SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise ValueError("the public URL must be an absolute http(s) URL")
    path = f"{parts.path.rstrip('/')}/api/v1/agent-stream/{quote(str(agent_uuid), safe='')}"
    query = urlencode({"provider": "cloudonix", "Domain": domain})
    return urlunsplit((scheme, parts.netloc, path, query, ""))


def bridge_cxml(url: str) -> str:
    """`<Response><Connect><Stream url=.../></Connect><Pause length="40"/></Response>`, escaped."""
    response = ET.Element("Response")
    connect = ET.SubElement(response, "Connect")
    ET.SubElement(connect, "Stream", {"url": url})
    ET.SubElement(response, "Pause", {"length": str(CXML_PAUSE_SECONDS)})
    ET.indent(response, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(response, encoding="unicode") + "\n"


@dataclass(frozen=True, slots=True)
class StreamAddress:
    url: str
    cxml: str


class NoConfigurationError(NotFoundError):
    """The organisation has no Cloudonix configuration for the domain: a call from it would be
    refused, so no stream URL is given for it."""

    def __init__(self, domain: str) -> None:
        self.domain = domain
        super().__init__(
            f"The organisation has no Cloudonix configuration for domain {domain}; "
            "add one (POST /api/v1/telephony-configurations) before asking for its stream URL"
        )


class StreamUrl:
    def __init__(self, get_agent: GetAgent, configs: TelephonyConfigRepository, public_url: str) -> None:
        self._get_agent = get_agent
        self._configs = configs
        self._public_url = public_url

    async def execute(self, organization_id: int, agent_uuid: UUID, domain: str) -> StreamAddress:
        """Raises `NotFoundError` for another organisation's agent, `NoConfigurationError` (a
        `NotFoundError`) for a domain the organisation has no configuration for, and
        `InvalidInputError` for a domain that is no domain name. The URL carries the domain as
        given (trimmed), as Cloudonix sends it."""
        given = domain.strip()
        normalized = cloudonix_domain(given, "domain")
        workflow = await self._get_agent.execute(organization_id, agent_uuid)
        if await self._configs.find_by_domain(organization_id, Provider.CLOUDONIX, normalized) is None:
            raise NoConfigurationError(normalized)
        url = stream_url(self._public_url, workflow.uuid, given)
        return StreamAddress(url=url, cxml=bridge_cxml(url))
