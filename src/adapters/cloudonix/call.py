"""The live call over Twilio-compatible framing (Cloudonix's media stream)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from application.ports.calls import (
    ActiveCall,
    CallFactory,
    CallSocket,
    DtmfIn,
    InboundEvent,
    MarkIn,
    ProviderCallRef,
    ProviderSessions,
    StopIn,
)
from domain.stream_events import StreamStart


class TwilioFramedCall(ActiveCall):
    def __init__(
        self,
        socket: CallSocket,
        start: StreamStart,
        control: ProviderSessions,
        ref: ProviderCallRef,
    ) -> None:
        self.start = start
        self._socket = socket
        self._control = control
        self._ref = ref

    async def events(self) -> AsyncIterator[InboundEvent]:
        while True:
            message = await self._socket.receive()
            if message is None:
                yield StopIn()
                return
            try:
                frame = json.loads(message)
            except ValueError:
                continue
            if not isinstance(frame, dict):
                continue
            event = frame.get("event")
            if event == "stop":
                yield StopIn()
                return
            if event == "dtmf":
                yield DtmfIn(str((frame.get("dtmf") or {}).get("digit", "")))
            elif event == "mark":
                yield MarkIn(str((frame.get("mark") or {}).get("name", "")))

    async def play(self, pcm: bytes) -> None:
        raise NotImplementedError

    async def mark(self, name: str) -> None:
        raise NotImplementedError

    async def clear(self) -> None:
        raise NotImplementedError

    async def hang_up(self) -> None:
        await self._control.hang_up(self._ref)

    async def transfer(self, destination: str) -> None:
        await self._control.transfer(self._ref, destination)


class TwilioFramedCalls(CallFactory):
    def open(
        self, socket: CallSocket, start: StreamStart, control: ProviderSessions, ref: ProviderCallRef
    ) -> ActiveCall:
        return TwilioFramedCall(socket, start, control, ref)
