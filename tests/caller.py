"""The Cloudonix side of a call, as a test drives it: a real WebSocket client sending the messages
of the wire format's caller side (`adapters.media.twilio.caller`)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from adapters.media.twilio.caller import connected_message, start_message, stop_message, to_text
from domain.stream_events import StreamStart

CONNECTED = connected_message()


def start_event(
    session: str, account_sid: str | None = "acme", stream_sid: str = "MZ-e2e", **extra: Any
) -> dict[str, Any]:
    """Cloudonix's `start` for `session`; `extra` replaces or adds raw `start` fields (hostile ones too)."""
    message = start_message(
        StreamStart(
            stream_sid=stream_sid,
            call_sid=f"CA-{session}",
            session=session,
            account_sid=account_sid,
            caller_number="+15555550100",
            called_number="+15555550199",
            context="inbound",
            tracks=("inbound",),
        )
    )
    message["start"].update(extra)
    return message


def stop_event(stream_sid: str = "MZ-e2e") -> dict[str, Any]:
    return stop_message(stream_sid, sequence_number="99")


@dataclass
class CallResult:
    code: int | None
    reason: str | None
    received: list[dict[str, Any]] = field(default_factory=list)


class Caller:
    """Connects, sends what the test says, and collects what the server sends until it closes."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.received: list[dict[str, Any]] = []

    async def send(self, message: dict[str, Any] | str) -> None:
        await self.ws.send(message if isinstance(message, str) else to_text(message))

    async def wait_closed(self, timeout: float = 10.0) -> CallResult:
        try:
            async with asyncio.timeout(timeout):
                async for message in self.ws:
                    self.received.append(json.loads(message))
        except ConnectionClosed:
            pass
        return CallResult(self.ws.close_code, self.ws.close_reason, self.received)


async def call(url: str, *messages: dict[str, Any] | str, timeout: float = 10.0) -> CallResult:
    """Send `messages` in order, then wait for the server to close."""
    async with connect(url, compression=None, open_timeout=10) as ws:
        caller = Caller(ws)
        for message in messages:
            try:
                await caller.send(message)
            except ConnectionClosed:
                break
        return await caller.wait_closed(timeout)
