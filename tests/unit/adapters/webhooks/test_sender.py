"""The webhook sender against a real receiver on loopback: the SSRF guard refuses private
addresses (before any connection) unless allowed, connects to the address it checked, follows
no redirect, and turns no answer into `ConnectionError`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adapters.webhooks.sender import HttpxWebhookSender, Resolver, webhook_client
from application.ports.webhooks import WebhookRefusedError
from tests.served import free_port
from tests.webhook_receiver import webhook_receiver

HEADERS = {"webhook-id": "msg_1", "content-type": "application/json"}


def _resolving(addresses: list[str]) -> Resolver:
    async def resolve(host: str, port: int) -> list[str]:
        return addresses

    return resolve


@pytest.fixture
async def client() -> AsyncIterator[object]:
    async with webhook_client() as http:
        yield http


@pytest.mark.parametrize(
    ("url", "addresses"),
    [
        ("https://127.0.0.1:{port}/hooks", None),  # an address literal: resolves to itself
        ("https://localhost:{port}/hooks", None),
        ("https://hooks.example.com:{port}/hooks", ["93.184.216.34", "127.0.0.1"]),  # one bad is enough
        ("https://metadata.example.com:{port}/", ["169.254.169.254"]),
        ("http://hooks.example.com:{port}/hooks", ["93.184.216.34"]),  # http needs the setting too
    ],
)
async def test_private_addresses_are_refused_by_default(
    client, url: str, addresses: list[str] | None
) -> None:
    with webhook_receiver() as receiver:
        port = receiver.url.split(":")[2].split("/")[0]
        sender = (
            HttpxWebhookSender(client, allow_private=False)
            if addresses is None
            else HttpxWebhookSender(client, allow_private=False, resolver=_resolving(addresses))
        )
        with pytest.raises(WebhookRefusedError):
            await sender.post(url.format(port=port), HEADERS, b"{}")
        assert receiver.received == []  # refused before any connection


async def test_with_private_addresses_allowed_it_connects_to_the_address_it_checked(client) -> None:
    with webhook_receiver() as receiver:
        port = receiver.url.split(":")[2].split("/")[0]
        # the name resolves (here) to loopback only: the request must go there, Host kept
        sender = HttpxWebhookSender(client, allow_private=True, resolver=_resolving(["127.0.0.1"]))
        status = await sender.post(f"http://hooks.invalid:{port}/hooks?x=1", HEADERS, b'{"a":1}')
        assert status == 204
        [post] = receiver.received
        assert post.headers["host"] == f"hooks.invalid:{port}"
        assert post.headers["webhook-id"] == "msg_1"
        assert post.body == b'{"a":1}'


async def test_a_redirect_is_an_answer_not_followed(client) -> None:
    with webhook_receiver(answers=[302]) as receiver:
        sender = HttpxWebhookSender(client, allow_private=True)
        assert await sender.post(receiver.url, HEADERS, b"{}") == 302
        assert len(receiver.received) == 1


async def test_no_answer_is_a_connection_error(client) -> None:
    sender = HttpxWebhookSender(client, allow_private=True)
    with pytest.raises(ConnectionError):
        await sender.post(f"http://127.0.0.1:{free_port()}/hooks", HEADERS, b"{}")


async def test_a_name_that_does_not_resolve_is_refused(client) -> None:
    sender = HttpxWebhookSender(client, allow_private=True)
    with pytest.raises(WebhookRefusedError, match="cannot resolve"):
        await sender.post("https://no-such-host.invalid/hooks", HEADERS, b"{}")
