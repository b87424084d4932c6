"""The console's sign-in session: the organisation's API key exchanged for a cookie.

The cookie holds, encrypted and authenticated with the credential cipher (Fernet, keyed by
`AGENT_STREAM_SECRET_KEY`), the *hash* of the key signed in with, the session's CSRF token and
when it was issued. Every instance sharing the secret key can verify it, so a session needs no
storage and works behind a load balancer; each request checks that the key still names an
organisation, so rotating the key (`agent-stream org rotate-key`) ends every session made with it.
Sign-out deletes the cookie. The key itself is never stored, logged, or put in a URL.

The cookie is HttpOnly, SameSite=Strict, path `/console`, `Secure` when the public URL is https,
and lasts `SESSION_SECONDS`.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie

from application.authentication import MAX_API_KEY_LENGTH
from application.ports.api_keys import ApiKeyRepository
from application.ports.credentials import CredentialCipher, UndecryptableCredentialError
from domain.api_keys import hash_api_key

COOKIE = "agent_stream_console"
SESSION_SECONDS = 8 * 3600
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_PURPOSE = "console-session/v1"  # the cipher also encrypts provider tokens: a session says what it is


class SignInRequiredError(Exception):
    """No valid session: the page sends the browser to the sign-in form."""


class CsrfRefusedError(Exception):
    """A console form came without its session's CSRF token (403)."""


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    organization_id: int
    csrf_token: str


class SessionCookies:
    """Makes and reads the session cookie; `secure` when the console is served over https."""

    def __init__(self, cipher: CredentialCipher, api_keys: ApiKeyRepository, *, secure: bool) -> None:
        self._cipher = cipher
        self._api_keys = api_keys
        self._secure = secure

    async def sign_in(self, api_key: str) -> tuple[ConsoleSession, Cookie] | None:
        """The session and its cookie when `api_key` names an organisation, else `None`."""
        key = api_key.strip()
        if not key or len(key) > MAX_API_KEY_LENGTH:
            return None
        key_hash = hash_api_key(key)
        organization_id = await self._api_keys.organization_for(key_hash)
        if organization_id is None:
            return None
        csrf = secrets.token_urlsafe(32)
        payload = json.dumps({"p": _PURPOSE, "k": key_hash, "c": csrf, "t": int(time.time())})
        return ConsoleSession(organization_id, csrf), self._cookie(self._cipher.encrypt(payload))

    async def session_of(self, connection: ASGIConnection[Any, Any, Any, Any]) -> ConsoleSession:
        """The request's session; raises `SignInRequiredError` without a valid, unexpired one."""
        raw = connection.cookies.get(COOKIE)
        if not raw:
            raise SignInRequiredError
        try:
            payload = json.loads(self._cipher.decrypt(raw))
        except (UndecryptableCredentialError, ValueError):
            raise SignInRequiredError from None
        if not isinstance(payload, dict) or payload.get("p") != _PURPOSE:
            raise SignInRequiredError
        issued = payload.get("t")
        if not isinstance(issued, int) or not 0 <= time.time() - issued < SESSION_SECONDS:
            raise SignInRequiredError
        key_hash, csrf = payload.get("k"), payload.get("c")
        if not isinstance(key_hash, str) or not isinstance(csrf, str):
            raise SignInRequiredError
        organization_id = await self._api_keys.organization_for(key_hash)
        if organization_id is None:  # the key was rotated: its sessions end
            raise SignInRequiredError
        return ConsoleSession(organization_id, csrf)

    def sign_out(self) -> Cookie:
        """A cookie that deletes the session's."""
        return Cookie(
            key=COOKIE,
            value="",
            path="/console",
            max_age=0,
            httponly=True,
            samesite="strict",
            secure=self._secure,
        )

    def _cookie(self, value: str) -> Cookie:
        return Cookie(
            key=COOKIE,
            value=value,
            path="/console",
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="strict",
            secure=self._secure,
        )


def check_csrf(session: ConsoleSession, submitted: str | None) -> None:
    """Raises `CsrfRefusedError` unless `submitted` is the session's token (constant-time compare)."""
    if not submitted or not hmac.compare_digest(submitted.encode(), session.csrf_token.encode()):
        raise CsrfRefusedError
