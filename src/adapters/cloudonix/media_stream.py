"""The live call over Twilio-compatible framing (Cloudonix's media stream).

Inbound frames become provider-neutral events; a bad frame is counted by kind and skipped, never
the end of the call. Outbound audio goes through the call's `OutboundPacer` (20 ms frames at real
time, at most 100 ms ahead). Call control goes through the provider's REST API: closing the socket
alone would leave a Cloudonix caller listening to the CXML's `<Pause>`.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import structlog

from adapters.media.g711 import codec_for
from adapters.media.pacer import OutboundPacer
from adapters.media.twilio.inbound import BadFrame, parse_inbound
from adapters.media.twilio.outbound import OutboundFramer
from application.ports.live_call import (
    ActiveCall,
    CallControlError,
    CallFactory,
    CallSocket,
    HangupReport,
    ProviderCallRef,
    ProviderSessions,
)
from application.ports.recordings import CallRecording
from domain.close_policy import Close
from domain.stream_events import AudioIn, InboundEvent, MarkIn, StopIn, StreamStart
from domain.workflow_run import EndReason, hangup_close, last_words_play_out, transfer_close

log = structlog.get_logger(__name__)

HANGUP_DRAIN_SECONDS = 5.0  # the agent's goodbye may play this long before the hang-up goes out
CLEAR_SEND_SECONDS = 0.2  # an immediate hang-up waits at most this long for its `clear` to go out
_STOP = StopIn()


class TwilioFramedCall(ActiveCall):
    def __init__(
        self,
        socket: CallSocket,
        start: StreamStart,
        control: ProviderSessions,
        ref: ProviderCallRef,
        on_bad_frame: Callable[[str], None] | None = None,
        hangup_drain_seconds: float = HANGUP_DRAIN_SECONDS,
    ) -> None:
        self.start = start
        self.ended_by: str | None = None
        self.closed_with: Close | None = None
        self._socket = socket
        self._control = control
        self._ref = ref
        self._codec = codec_for(start.media_format.encoding)
        self._pacer = OutboundPacer(socket.send, OutboundFramer(start.stream_sid, self._codec))
        self._pacer.start()
        self._on_bad_frame = on_bad_frame
        self._drain_seconds = hangup_drain_seconds
        self._ending: asyncio.Lock = asyncio.Lock()
        self._frames_in = 0
        self._bad: Counter[str] = Counter()
        self._hangup: HangupReport | None = None
        self._recording: CallRecording | None = None

    def record(self, recording: CallRecording) -> None:
        recording.agent_encoding(self._codec.name)
        self._recording = recording
        self._pacer.record(recording.agent, recording.cut)

    # inbound -------------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[InboundEvent]:
        receive = self._socket.receive
        stream_sid = self.start.stream_sid
        codec = self._codec
        clock = asyncio.get_running_loop().time
        while True:
            message = await receive()
            if message is None:
                yield _STOP
                return
            recording = self._recording
            event = parse_inbound(message, stream_sid, codec, positions=recording is not None)
            if event is None:
                continue
            if type(event) is AudioIn:
                self._frames_in += 1
                if recording is not None:
                    recording.caller(event.pcm, event.position, clock())
                yield event
            elif isinstance(event, BadFrame):
                self._count_bad(event)
            elif type(event) is StopIn:
                yield event
                return
            else:
                if type(event) is MarkIn:
                    self._pacer.on_mark_echo(event.name)
                yield event

    def _count_bad(self, frame: BadFrame) -> None:
        self._bad[frame.kind] += 1
        if self._bad[frame.kind] == 1:  # the first of each kind is logged; all are counted
            log.warning("bad_frame_skipped", kind=frame.kind, detail=frame.detail)
        if self._on_bad_frame is not None:
            self._on_bad_frame(frame.kind)

    # outbound ------------------------------------------------------------------------------

    async def play(self, pcm: bytes) -> None:
        self._pacer.play(pcm)

    async def mark(self, name: str) -> None:
        self._pacer.mark(name)

    async def clear(self) -> None:
        self._pacer.clear()

    def playing(self) -> bool:
        return self._pacer.queued_seconds() - self._pacer.played_seconds() > 1e-3

    def played_seconds(self) -> float:
        return self._pacer.played_seconds()

    # call control --------------------------------------------------------------------------

    async def hang_up(self, reason: str = EndReason.AGENT_HANGUP, close: Close | None = None) -> None:
        async with self._ending:
            if self.ended_by is not None:
                return
            self.ended_by = str(reason)
            if last_words_play_out(reason):  # the agent's goodbye: let it play
                await self._pacer.drain(timeout=self._drain_seconds)
            else:  # asked for (caller, operator, drain) or a limit: the caller stops hearing us now
                self._pacer.clear()
                await self._pacer.drain(timeout=CLEAR_SEND_SECONDS)  # only the `clear` is left to send
            try:
                self._hangup = await self._control.hang_up(self._ref)
            except CallControlError as failure:
                # the run still ends, marked: the caller may still be on the line
                self._hangup = failure.report or HangupReport(hung_up=False, attempts=0, last_status=None)
                log.warning("call_left_on_the_line", **self._hangup.to_log())
            await self._end_stream(close or hangup_close(reason))

    async def transfer(self, destination: str) -> None:
        async with self._ending:
            if self.ended_by is not None:
                raise CallControlError("the call has already ended")
            await self._control.transfer(self._ref, destination)
            self.ended_by = EndReason.TRANSFERRED
            await self._end_stream(transfer_close(destination))

    async def _end_stream(self, close: Close) -> None:
        self.closed_with = close
        await self._pacer.aclose()
        await self._socket.close(close)

    async def aclose(self) -> None:
        await self._pacer.aclose()

    def control_logs(self) -> dict[str, Any]:
        return {"provider_hangup": self._hangup.to_log()} if self._hangup is not None else {}

    def stats(self) -> dict[str, Any]:
        return {
            "frames_in": self._frames_in,
            "frames_out": self._pacer.frames_sent,
            "bad_frames": dict(self._bad),
        }


class TwilioFramedCalls(CallFactory):
    def __init__(self, on_bad_frame: Callable[[str], None] | None = None) -> None:
        self._on_bad_frame = on_bad_frame

    def open(
        self, socket: CallSocket, start: StreamStart, control: ProviderSessions, ref: ProviderCallRef
    ) -> ActiveCall:
        return TwilioFramedCall(socket, start, control, ref, on_bad_frame=self._on_bad_frame)
