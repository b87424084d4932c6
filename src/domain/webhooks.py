"""End-of-call webhooks: the URL rule, the Standard Webhooks signature, and the retry schedule.

A delivery is one POST per ended run, kept in an outbox until a 2xx answers it. The signature is
the Standard Webhooks one (https://www.standardwebhooks.com): `webhook-signature: v1,<base64
HMAC-SHA256 of "id.timestamp.body">`, keyed with the base64 bytes after the secret's `whsec_`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit

from domain.stored import Stored

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix, not a secret
SECRET_BYTES = 32
EVENT_TYPE = "run.ended"
MAX_URL_LENGTH = 2048
FIRST_RETRY_SECONDS = 1.0  # then doubled at each attempt, with jitter
MAX_RETRY_SECONDS = 3600.0  # an hour between attempts at most
RETRY_WINDOW = timedelta(hours=24)  # after which a delivery that never got a 2xx has failed


class DeliveryState(StrEnum):
    PENDING = "pending"  # waiting for its next attempt
    DELIVERED = "delivered"  # a 2xx answered it
    FAILED = "failed"  # no 2xx within the retry window


def new_secret() -> str:
    """A new signing secret: `whsec_` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for `body` sent as `message_id` at `timestamp`."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt (the id stays the same across retries)."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
        "content-type": "application/json",
    }


class InvalidWebhookUrlError(ValueError):
    """A `webhook_url` that cannot be a webhook's address."""


def check_webhook_url(url: object, allow_http: bool) -> str:
    """`url` if it is an absolute https URL with a host and no credentials (http too with
    `allow_http`); raises `InvalidWebhookUrlError` saying why not."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidWebhookUrlError("must be an https URL")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidWebhookUrlError(f"must be at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port  # refuses a port that is no number
    except ValueError:
        raise InvalidWebhookUrlError("must be an https URL") from None
    allowed = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in allowed:
        raise InvalidWebhookUrlError(
            "must be an https URL"
            + ("" if allow_http else " (http needs AGENT_STREAM_WEBHOOK_ALLOW_PRIVATE)")
        )
    if not parts.hostname or port == 0:
        raise InvalidWebhookUrlError("must name a host")
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhookUrlError("must not hold credentials")
    if any(ch.isspace() or ord(ch) < 0x20 for ch in url):
        raise InvalidWebhookUrlError("must not contain spaces or control characters")
    return url


@dataclass(frozen=True, slots=True)
class WebhookPolicy:
    """`allow_private` (`AGENT_STREAM_WEBHOOK_ALLOW_PRIVATE`): http URLs and private addresses."""

    allow_private: bool = False

    def check(self, url: str | None) -> None:
        """Refuse (`InvalidWebhookUrlError`) a webhook URL this service will not call."""
        if url is not None:
            check_webhook_url(url, allow_http=self.allow_private)


def webhook_url_of(definition: object) -> str | None:
    """The `webhook_url` of a stored agent definition (a JSON object), if it has one; never
    raises, so a run's end is stored whatever its agent's definition holds."""
    url = definition.get("webhook_url") if isinstance(definition, dict) else None
    return url if isinstance(url, str) and url else None


HTTPS_ONLY = WebhookPolicy()


def public_address(address: str) -> bool:
    """Whether `address` (an IP address) is on the public internet: not loopback, private,
    link-local, multicast, reserved or unspecified (an IPv4 address inside IPv6 is judged as
    IPv4). A webhook may only go to such an address unless private ones are allowed."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            ip = mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def retry_delay(attempts: int, jitter: float) -> float:
    """Seconds before the next attempt after `attempts` failed ones: 1, 2, 4, ... up to an hour,
    each scaled by a `jitter` in [0, 1) into its upper half (so retries of many deliveries spread)."""
    base = min(FIRST_RETRY_SECONDS * float(2 ** min(max(attempts - 1, 0), 32)), MAX_RETRY_SECONDS)
    return base * (0.5 + 0.5 * min(max(jitter, 0.0), 1.0))


@dataclass(slots=True)
class WebhookDelivery(Stored):
    """One ended run's POST: its outbox row."""

    run_id: int
    url: str
    message_id: str  # `webhook-id`: the same on every attempt, so receivers can drop repeats
    created_at: datetime
    next_attempt_at: datetime
    state: DeliveryState = DeliveryState.PENDING
    attempts: int = 0
    last_status: int | None = None  # the HTTP status of the last attempt; None when none answered
    id: int | None = None

    def attempted(self, now: datetime, status: int | None, jitter: float) -> None:
        """Record one attempt: a 2xx delivers it; anything else is retried later, until the
        retry window since `created_at` is over."""
        self.attempts += 1
        self.last_status = status
        if status is not None and 200 <= status < 300:
            self.state = DeliveryState.DELIVERED
            return
        next_at = now + timedelta(seconds=retry_delay(self.attempts, jitter))
        if next_at - self.created_at > RETRY_WINDOW:
            self.state = DeliveryState.FAILED
        else:
            self.next_attempt_at = next_at
