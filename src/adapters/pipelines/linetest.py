"""The built-in `linetest` engine: proves a line end to end without any AI service.

It greets the caller, echoes each utterance back once the caller pauses (voice-activity detection,
not a fixed threshold), stops its own audio the moment the caller talks over it (barge-in), and obeys
DTMF: `#` hangs up through the provider at once (recorded as the caller's hang-up: the caller asked),
`0` transfers to the definition's `transfer_destination`, `*` replays the greeting.
`max_call_seconds` ends the call through the provider too, at once (the engine says no goodbye).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine
from functools import cache
from typing import Any

import structlog

from adapters.media.g711 import MULAW
from adapters.media.vad import SpeechEnd, SpeechStart, VoiceActivityDetector
from adapters.pipelines.assets import greeting_ulaw
from adapters.pipelines.pcm import silence
from application.ports.live_call import (
    ActiveCall,
    AgentPipeline,
    AgentSession,
    CallControlError,
    CallJournal,
    CallOutcome,
)
from domain.agents import AgentDefinition
from domain.stream_events import AudioIn, DtmfIn, StopIn
from domain.workflow_run import EndReason

log = structlog.get_logger(__name__)

PRE_ROLL_FRAMES = 3  # audio kept from before the detected onset, so the echo keeps the first sound
TAIL_FRAMES = 3  # audio kept after the last voiced frame, so the echo keeps the word's end
MAX_UTTERANCE_FRAMES = 1500  # 30 s: a longer utterance is echoed at this length
TURN_END_SILENCE = silence(0.3)  # after each agent turn


@cache
def greeting_pcm() -> bytes:
    """The shipped greeting as 16-bit PCM, decoded once per process."""
    return MULAW.decode(greeting_ulaw())


class LineTestPipeline(AgentPipeline):
    def __init__(self, vad_factory: Callable[[], VoiceActivityDetector] = VoiceActivityDetector) -> None:
        self._vad_factory = vad_factory

    def prepare(
        self, definition: AgentDefinition, context: dict[str, Any], journal: CallJournal
    ) -> AgentSession:
        return _LineTestSession(definition, self._vad_factory)

    async def aclose(self) -> None:
        return None  # it holds nothing shared between calls


class _LineTestSession(AgentSession):
    def __init__(self, definition: AgentDefinition, vad_factory: Callable[[], VoiceActivityDetector]) -> None:
        self._definition = definition
        self._vad_factory = vad_factory

    async def run(self, call: ActiveCall) -> CallOutcome:
        return await _LineTest(call, self._definition, self._vad_factory()).run()

    async def aclose(self) -> None:
        return None


class _LineTest:
    def __init__(self, call: ActiveCall, definition: AgentDefinition, vad: VoiceActivityDetector) -> None:
        self.call = call
        self.definition = definition
        self.vad = vad
        self.recent: deque[bytes] = deque(maxlen=PRE_ROLL_FRAMES + 4)
        self.utterance: list[bytes] | None = None
        self.utterance_first_frame = 0
        self.digits: list[str] = []
        self.echoes = 0
        self.barge_ins = 0
        self.transfer_failures = 0

    def gathered(self) -> dict[str, Any]:
        return {
            "dtmf": "".join(self.digits),
            "utterances_echoed": self.echoes,
            "barge_ins": self.barge_ins,
            "transfer_failures": self.transfer_failures,
        }

    def outcome(self, reason: str) -> CallOutcome:
        return CallOutcome(end_reason=self.call.ended_by or reason, gathered=self.gathered())

    async def run(self) -> CallOutcome:
        await self.greet()
        try:
            async with asyncio.timeout(self.definition.max_call_seconds):
                return await self.converse()
        except TimeoutError:
            log.info("max_call_seconds_reached", seconds=self.definition.max_call_seconds)
            await self.call.hang_up(EndReason.MAX_DURATION)
            return self.outcome(EndReason.MAX_DURATION)

    async def greet(self) -> None:
        await self.say(greeting_pcm(), "greeting")

    async def say(self, pcm: bytes, mark: str) -> None:
        """Play one agent turn, then a short silence: the line goes quiet audibly, the way a
        caller's ear (and a talk-spurt detector) knows a turn has ended."""
        await self.call.play(pcm)
        await self.call.mark(mark)
        await self.call.play(TURN_END_SILENCE)

    async def converse(self) -> CallOutcome:
        async for event in self.call.events():
            kind = type(event)
            if kind is AudioIn:
                action = self.hear(event.pcm)  # type: ignore[union-attr]
                if action is not None:  # rare: most frames need no await at all
                    await action
            elif kind is DtmfIn:
                ended = await self.on_digit(event.digit)  # type: ignore[union-attr]
                if ended is not None:
                    return ended
            elif kind is StopIn:
                break
        return self.outcome(EndReason.CALLER_HANGUP)

    def hear(self, pcm: bytes) -> Coroutine[Any, Any, None] | None:
        """Take one caller frame; returns what must be awaited (echo or barge-in), if anything."""
        vad_event = self.vad.feed(pcm)
        self.recent.append(pcm)
        utterance = self.utterance
        if utterance is not None:
            utterance.append(pcm)
            if len(utterance) >= MAX_UTTERANCE_FRAMES:
                return self.echo(len(utterance))
            if type(vad_event) is SpeechEnd:
                voiced = vad_event.last_voiced - self.utterance_first_frame + 1
                return self.echo(voiced + TAIL_FRAMES)
        elif type(vad_event) is SpeechStart:
            current = self.vad.frames - 1
            keep = min(len(self.recent), current - vad_event.frame + 1 + PRE_ROLL_FRAMES)
            self.utterance = list(self.recent)[-keep:]
            self.utterance_first_frame = current - keep + 1
            if self.call.playing():  # the caller talks over the agent: stop at once
                return self.barge_in()
        return None

    async def barge_in(self) -> None:
        await self.call.clear()
        await self.call.play(TURN_END_SILENCE)
        self.barge_ins += 1

    async def echo(self, frames: int) -> None:
        utterance, self.utterance = self.utterance or [], None
        self.echoes += 1
        await self.say(b"".join(utterance[:frames]), f"echo-{self.echoes}")

    async def on_digit(self, digit: str) -> CallOutcome | None:
        self.digits.append(digit)
        if digit == "#":  # the caller asks to end the call: at once, not after the greeting
            await self.call.hang_up(EndReason.CALLER_HANGUP)
            return self.outcome(EndReason.CALLER_HANGUP)
        if digit == "*":
            await self.call.clear()
            await self.greet()
        elif digit == "0":
            destination = self.definition.transfer_destination
            if not destination:
                log.info("transfer_not_configured")
                return None
            try:
                await self.call.transfer(destination)
            except CallControlError:
                self.transfer_failures += 1
                log.warning("transfer_failed")
                return None
            return self.outcome(EndReason.TRANSFERRED)
        return None
