"""In-memory stand-ins for the outside of a call: the provider's socket and REST API.

For unit tests of the use cases and for simulations; they record what happened so tests assert
on state, not on calls.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from application.ports.live_call import (
    ActiveCall,
    CallControlError,
    CallJournal,
    CallSocket,
    HangupReport,
    ProviderCallRef,
    ProviderSessions,
)
from domain.close_policy import Close
from domain.stream_events import InboundEvent, StopIn, StreamStart
from domain.workflow_run import hangup_close, transfer_close


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
        self.validate_delay = 0.0  # seconds each validation takes (a slow provider)

    def add_session(self, domain: str, session: str, token: str) -> None:
        self.valid_sessions.add((domain, session, token))

    async def validate(self, call: ProviderCallRef) -> bool:
        self.validated.append((call.domain, call.session))
        if self.validate_delay:
            await asyncio.sleep(self.validate_delay)
        return (call.domain, call.session, call.bearer_token.reveal()) in self.valid_sessions

    async def hang_up(self, call: ProviderCallRef) -> HangupReport:
        if self.fail_hang_up:
            raise CallControlError("hang-up failed", HangupReport(hung_up=False, attempts=1, last_status=500))
        self.hung_up.append((call.domain, call.session))
        return HangupReport(hung_up=True, attempts=1, last_status=204)

    async def transfer(self, call: ProviderCallRef, destination: str) -> None:
        self.transfers.append((call.domain, call.session, destination))


class InMemoryActiveCall(ActiveCall):
    """A live call in memory: tests push inbound events and read what the agent did.

    Playback is modelled simply: audio queued by `play` is "playing" until `clear`, or until the
    test calls `finish_playback()`; with `instant_playback` it is never playing.
    """

    def __init__(
        self, start: StreamStart, fail_transfer: bool = False, instant_playback: bool = False
    ) -> None:
        self.start = start
        self.ended_by: str | None = None
        self.closed_with: Close | None = None
        self.played: list[bytes] = []
        self.marks: list[str] = []
        self.clears = 0
        self.operations: list[str] = []  # "play", "mark:<name>", "clear", "hang_up:<reason>", ...
        self.transfers: list[str] = []
        self.fail_transfer = fail_transfer
        self.instant_playback = instant_playback
        self.closed = False
        self.close: Close | None = None  # the close a hang-up asked the stream to get
        self.heard_seconds: float | None = None  # set to pin the playback position (else: all heard)
        self._inbox: asyncio.Queue[InboundEvent] = asyncio.Queue()
        self._playing = False

    def push(self, *events: InboundEvent) -> None:
        for event in events:
            self._inbox.put_nowait(event)

    def finish_playback(self) -> None:
        self._playing = False

    async def events(self) -> AsyncIterator[InboundEvent]:
        while True:
            event = await self._inbox.get()
            yield event
            if isinstance(event, StopIn):
                return

    async def play(self, pcm: bytes) -> None:
        self.played.append(pcm)
        self.operations.append("play")
        self._playing = not self.instant_playback

    async def mark(self, name: str) -> None:
        self.marks.append(name)
        self.operations.append(f"mark:{name}")

    async def clear(self) -> None:
        self.clears += 1
        self.operations.append("clear")
        self._playing = False

    def playing(self) -> bool:
        return self._playing

    def played_seconds(self) -> float:
        if self.heard_seconds is not None:
            return self.heard_seconds
        return sum(len(pcm) for pcm in self.played) / 16000

    async def hang_up(self, reason: str = "agent_hangup", close: Close | None = None) -> None:
        self.operations.append(f"hang_up:{reason}")
        self.close = close or hangup_close(reason)
        if self.ended_by is None:
            self.ended_by = reason
            self.closed_with = self.close
            self._inbox.put_nowait(StopIn())

    async def transfer(self, destination: str) -> None:
        self.operations.append(f"transfer:{destination}")
        if self.fail_transfer:
            raise CallControlError("destination busy")
        self.transfers.append(destination)
        self.ended_by = "transferred"
        self.closed_with = transfer_close(destination)
        self._inbox.put_nowait(StopIn())

    async def aclose(self) -> None:
        self.closed = True

    def stats(self) -> dict[str, Any]:
        return {"played_chunks": len(self.played)}


class InMemoryCallJournal(CallJournal):
    """A `CallJournal` kept in a dict (the agent's entries, for tests and other entrypoints)."""

    def __init__(self) -> None:
        self.entries: dict[str, list[dict[str, Any]]] = {}

    async def append(self, entries: list[tuple[str, dict[str, Any]]]) -> None:
        for key, entry in entries:
            self.entries.setdefault(key, []).append(entry)
