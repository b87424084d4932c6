"""Webhook rules: the signature (checked with the `standardwebhooks` library), the URL rule, the
addresses a webhook may go to, and the retry schedule."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from domain.webhooks import (
    RETRY_WINDOW,
    DeliveryState,
    InvalidWebhookUrlError,
    WebhookDelivery,
    WebhookPolicy,
    check_webhook_url,
    new_secret,
    public_address,
    retry_delay,
    signed_headers,
)

T0 = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)


def test_a_signature_verifies_with_the_library() -> None:
    secret = new_secret()
    body = b'{"type":"run.ended","data":{"name":"WR-AGS-00000001","text":"caf\xc3\xa9"}}'
    headers = signed_headers(secret, "msg_1", int(time.time()), body)
    assert Webhook(secret).verify(body, headers) == {
        "type": "run.ended",
        "data": {"name": "WR-AGS-00000001", "text": "café"},
    }
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)  # another secret
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body + b" ", headers)  # another body


def test_a_secret_is_whsec_and_32_random_bytes() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert new_secret() != secret


@pytest.mark.parametrize(
    "url",
    ["https://hooks.example.com/agent", "https://hooks.example.com:8443/a?b=c", "https://[2001:db8::1]/x"],
)
def test_https_urls_are_webhook_urls(url: str) -> None:
    assert check_webhook_url(url, allow_http=False) == url


@pytest.mark.parametrize(
    ("url", "allow_http"),
    [
        ("http://hooks.example.com/", False),
        ("ftp://hooks.example.com/", True),
        ("https:///no-host", True),
        ("https://user:pw@hooks.example.com/", True),
        ("https://hooks.example.com:notaport/", True),
        ("https://hooks.example.com/a b", True),
        ("", True),
        (42, True),
        ("https://h.example.com/" + "a" * 2100, True),
    ],
)
def test_other_urls_are_refused(url: object, allow_http: bool) -> None:
    with pytest.raises(InvalidWebhookUrlError):
        check_webhook_url(url, allow_http=allow_http)


def test_http_needs_private_addresses_allowed() -> None:
    WebhookPolicy(allow_private=True).check("http://127.0.0.1:9000/hooks")
    WebhookPolicy().check(None)  # no webhook
    with pytest.raises(InvalidWebhookUrlError, match="AGENT_STREAM_WEBHOOK_ALLOW_PRIVATE"):
        WebhookPolicy().check("http://127.0.0.1:9000/hooks")


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # the cloud metadata service
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4 inside IPv6 is judged as IPv4
        ("::ffff:93.184.216.34", True),
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert public_address(address) is public


def test_retries_back_off_exponentially_with_jitter_up_to_an_hour() -> None:
    assert [retry_delay(n, 1.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert retry_delay(3, 0.0) == 2.0  # jitter keeps the upper half
    assert retry_delay(40, 1.0) == 3600.0
    assert retry_delay(500, 0.5) == 2700.0


def test_a_2xx_delivers_anything_else_is_retried_until_the_window_ends() -> None:
    delivery = WebhookDelivery(
        run_id=1, url="https://h.example.com/", message_id="m", created_at=T0, next_attempt_at=T0
    )
    delivery.attempted(T0, 500, jitter=1.0)
    assert (delivery.state, delivery.attempts, delivery.last_status) == (DeliveryState.PENDING, 1, 500)
    assert delivery.next_attempt_at == T0 + timedelta(seconds=1)
    delivery.attempted(T0 + timedelta(seconds=1), None, jitter=1.0)
    assert (delivery.state, delivery.attempts, delivery.last_status) == (DeliveryState.PENDING, 2, None)
    assert delivery.next_attempt_at == T0 + timedelta(seconds=3)
    delivery.attempted(T0 + timedelta(seconds=3), 204, jitter=1.0)
    assert (delivery.state, delivery.attempts, delivery.last_status) == (DeliveryState.DELIVERED, 3, 204)

    late = WebhookDelivery(
        run_id=2, url="https://h.example.com/", message_id="n", created_at=T0, next_attempt_at=T0
    )
    late.attempted(T0 + RETRY_WINDOW - timedelta(seconds=0.5), 503, jitter=1.0)
    assert (late.state, late.last_status) == (DeliveryState.FAILED, 503)
