"""In-memory stand-ins for the outside of a call: the provider's socket and REST API.

For unit tests of the use cases and for simulations; they record what happened so tests assert
on state, not on calls.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from application.ports.calls import CallControlError, CallSocket, ProviderCallRef, ProviderSessions
from domain.close_policy import Close


class InMemoryCallSocket(CallSocket):
    """A socket fed by `feed`/`feed_json`; `end()` plays the peer closing."""

    def __init__(self) -> None:
        self._inbox: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self.sent: list[str] = []
        self.closed_with: Close | None = None
        self.peer_gone = False

    def feed(self, message: str | bytes) -> None:
        self._inbox.put_nowait(message)

    def feed_json(self, message: dict[str, Any]) -> None:
        self.feed(json.dumps(message))

    def end(self) -> None:
        self._inbox.put_nowait(None)

    async def receive(self) -> str | bytes | None:
        if self.closed_with is not None or self.peer_gone:
            return None
        message = await self._inbox.get()
        if message is None:
            self.peer_gone = True
        return message

    async def send(self, text: str) -> bool:
        if self.closed_with is not None or self.peer_gone:
            return False
        self.sent.append(text)
        return True

    async def close(self, close: Close) -> None:
        if self.closed_with is None:
            self.closed_with = close

    @property
    def sent_events(self) -> list[dict[str, Any]]:
        return [json.loads(m) for m in self.sent]


class InMemoryProviderSessions(ProviderSessions):
    """A provider whose live sessions are `valid_sessions` (domain, session, token) triples."""

    def __init__(self) -> None:
        self.valid_sessions: set[tuple[str, str, str]] = set()
        self.validated: list[tuple[str, str]] = []
        self.hung_up: list[tuple[str, str]] = []
        self.transfers: list[tuple[str, str, str]] = []
        self.fail_hang_up = False

    def add_session(self, domain: str, session: str, token: str) -> None:
        self.valid_sessions.add((domain, session, token))

    async def validate(self, call: ProviderCallRef) -> bool:
        self.validated.append((call.domain, call.session))
        return (call.domain, call.session, call.bearer_token.reveal()) in self.valid_sessions

    async def hang_up(self, call: ProviderCallRef) -> None:
        if self.fail_hang_up:
            raise CallControlError("hang-up failed")
        self.hung_up.append((call.domain, call.session))

    async def transfer(self, call: ProviderCallRef, destination: str) -> None:
        self.transfers.append((call.domain, call.session, destination))
