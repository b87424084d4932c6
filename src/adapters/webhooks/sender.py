"""POSTs a webhook to the address it checked: the SSRF guard.

The host is resolved here, every address it resolves to is checked (`domain.webhooks.
public_address`), and the connection goes to a checked address, with the host name kept for the
`Host` header and TLS (SNI and certificate check): a DNS answer that changes between the check
and the connection (DNS rebinding) cannot move the request to a private address. Redirects are
not followed (a 3xx is an answer like any other non-2xx: retried), proxies from the environment
are not used, and the answer's body is never read.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import httpx

from application.ports.webhooks import WebhookRefusedError, WebhookSender
from domain.webhooks import public_address

CONNECT_TIMEOUT = 3.0
TIMEOUT = 5.0  # the whole attempt: a receiver should answer at once and work afterwards
Resolver = Callable[[str, int], Awaitable[list[str]]]


async def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (an address literal resolves to itself)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def webhook_client() -> httpx.AsyncClient:
    """The client webhooks are sent with: short timeouts, no redirects, no proxies, no kept
    connections (each attempt connects to the address it checked)."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(TIMEOUT, connect=CONNECT_TIMEOUT),
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=0),
    )


class HttpxWebhookSender(WebhookSender):
    def __init__(self, client: httpx.AsyncClient, allow_private: bool, resolver: Resolver = resolve) -> None:
        self._client = client
        self._allow_private = allow_private
        self._resolve = resolver

    async def post(self, url: str, headers: dict[str, str], body: bytes) -> int:
        target = httpx.URL(url)
        if target.scheme != "https" and not (target.scheme == "http" and self._allow_private):
            raise WebhookRefusedError(f"{target.scheme} URLs are not allowed")
        host = target.raw_host.decode("ascii")  # IDNA-encoded: as DNS and TLS know it
        port = target.port or (443 if target.scheme == "https" else 80)
        address = await self._checked_address(host, port)
        extensions = {"sni_hostname": host} if target.scheme == "https" else {}
        try:
            async with self._client.stream(
                "POST",
                target.copy_with(host=address),
                content=body,
                headers={**headers, "host": target.netloc.decode("ascii")},
                extensions=extensions,
            ) as response:
                return response.status_code
        except httpx.HTTPError as exc:  # no answer: refused, reset, timed out, TLS failed
            raise ConnectionError(type(exc).__name__) from None

    async def _checked_address(self, host: str, port: int) -> str:
        try:
            addresses = await self._resolve(host, port)
        except OSError as exc:
            raise WebhookRefusedError(f"cannot resolve {host}: {type(exc).__name__}") from None
        if not addresses:
            raise WebhookRefusedError(f"cannot resolve {host}")
        if not self._allow_private:
            refused = [address for address in addresses if not public_address(address)]
            if refused:
                raise WebhookRefusedError(f"{host} resolves to a private address ({refused[0]})")
        return addresses[0]
