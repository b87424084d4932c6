"""What the caller has heard of the agent, and the model told so.

`Playback` lays each sentence the agent speaks over the call's playback timeline, so a turn cut by
barge-in (or by the call ending) is cut where the caller stopped hearing it, in the transcript;
`HeardContext` and `apply_cut` put that heard text, instead of what was generated, into the
model's context before it is asked again.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass
from typing import Any

from pipecat.frames.frames import Frame, LLMContextFrame
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from adapters.pipelines.pcm import duration
from application.ports.live_call import ActiveCall

LEAD = 0.1  # seconds of agent audio allowed ahead of the caller's playback


@dataclass(slots=True)
class _Segment:
    text: str
    duration: float = 0.0  # seconds of its audio received so far
    start: float | None = None  # where its audio starts on the playback timeline


class Playback:
    """What the caller has heard of the agent, on the call's playback timeline.

    Pipecat hands the output each sentence's text just before its audio. Sentences are noted as
    they are queued (text, then the length of their audio) and placed on the timeline as their
    audio is written. When the turn is cut (barge-in, or the call ending), the playback position
    cuts it: sentences that ended before it were heard whole, the one playing is cut in proportion
    to the share of its audio played, the rest were not heard.
    """

    def __init__(self, call: ActiveCall, on_turn_end: Callable[[str, str, bool], None]) -> None:
        self._call = call
        self._on_turn_end = on_turn_end
        self._written = 0.0
        self._queued: deque[_Segment] = deque()  # in the output's queue, not yet written
        self._receiving: _Segment | None = None  # the sentence whose audio is arriving
        self._segments: list[_Segment] = []  # the current turn's, written
        self.turn_audio_at: float | None = None  # monotonic time the current turn's first audio went out
        self.on_first_audio: Callable[[float], None] | None = None
        self._phrase: asyncio.Task[float] | None = None  # a phrase playing as it arrives (`play`)

    @property
    def speaking(self) -> bool:
        """The turn is not over: its audio plays, or is on its way, or its end is not noted yet."""
        return self.audible or bool(self._segments)

    @property
    def audible(self) -> bool:
        """The caller hears the agent now, or its next audio is on its way."""
        phrase = self._phrase is not None and not self._phrase.done()
        return phrase or bool(self._queued) or self._call.playing()

    # queue side: in the order Pipecat queues frames on the output
    def queue_text(self, text: str) -> None:
        self._queue(text)

    def queue_audio(self, seconds: float) -> None:
        receiving = self._receiving
        if receiving is None:  # audio without a sentence's text
            receiving = self._queue("")
        receiving.duration += seconds  # it may already be playing

    def _queue(self, text: str) -> _Segment:
        segment = self._receiving = _Segment(text)
        self._queued.append(segment)
        return segment

    # write side: in the order the output writes them
    def announce(self) -> None:
        """The next queued sentence's audio comes next."""
        if self._queued:
            self._segments.append(self._queued.popleft())

    async def speak(self, text: str, pcm: bytes) -> None:
        """Queue a whole phrase at once (the greeting, the apology), outside Pipecat's queue; the
        call's pacer plays it while the caller can still talk over it."""
        self._segments.append(_Segment(text, duration(pcm)))
        await self.write(pcm, pace=False)

    def play(self, text: str, audio: AsyncIterable[bytes]) -> asyncio.Task[float]:
        """Play a whole phrase (the greeting) outside Pipecat's queue, each piece as soon as it
        arrives; a barge-in stops it. The task returns the seconds of it queued."""
        self._stop_phrase()
        self._phrase = asyncio.create_task(self._play(text, audio))
        return self._phrase

    async def _play(self, text: str, audio: AsyncIterable[bytes]) -> float:
        segment = _Segment(text)
        self._segments.append(segment)
        async for pcm in audio:
            segment.duration += duration(pcm)  # the share heard at a cut is of what arrived so far
            await self.write(pcm, pace=False)
        if not segment.duration and segment in self._segments:
            self._segments.remove(segment)  # nothing came (the TTS failed): nothing was said
        return segment.duration

    def _stop_phrase(self) -> None:
        if self._phrase is not None:
            self._phrase.cancel()
            self._phrase = None

    async def write(self, pcm: bytes, pace: bool = True) -> None:
        """Queue audio for the caller; with `pace`, return only once it is at most `LEAD` ahead of
        the caller's ear (so Pipecat's idea of "speaking" follows what the caller hears)."""
        self._written = max(self._written, self._call.played_seconds())  # after a pause: starts now
        if not self._segments:
            if self._queued:
                self.announce()
            else:
                self._segments.append(_Segment("", duration(pcm)))
        segment = self._segments[-1]
        if segment.start is None:
            segment.start = self._written
        if self.turn_audio_at is None:
            self.turn_audio_at = time.monotonic()
            if self.on_first_audio is not None:
                self.on_first_audio(self.turn_audio_at)
        await self._call.play(pcm)
        self._written += duration(pcm)
        ahead = self._written - self._call.played_seconds() - LEAD
        if pace and ahead > 0:
            await asyncio.sleep(ahead)

    async def interrupt(self) -> None:
        """Barge-in: silence the line at once and end the turn where the caller stopped hearing it."""
        self._stop_phrase()  # before the `clear`: nothing of it is queued after
        at = self._call.played_seconds()
        if self._call.playing():  # Pipecat interrupts on every caller turn; `clear` only what plays
            await self._call.clear()
        self._written = at
        self.cut(at)

    def cut(self, at: float) -> None:
        """End the current turn at playback position `at` (a barge-in, or the call ending)."""
        self._stop_phrase()
        if self._segments or self._queued:
            full, heard = self._texts(at)
            self._reset()
            self._on_turn_end(full, heard, heard != full)

    def turn_done(self) -> None:
        """Pipecat says the agent stopped speaking: everything written was heard."""
        if self._segments:
            _, heard = self._texts(None)
            self._segments = []
            self.turn_audio_at = None
            self._on_turn_end(heard, heard, False)

    def _reset(self) -> None:
        self._segments = []
        self._queued.clear()
        self._receiving = None
        self.turn_audio_at = None

    def _texts(self, at: float | None) -> tuple[str, str]:
        full: list[str] = []
        heard: list[str] = []
        for segment in self._segments if at is None else [*self._segments, *self._queued]:
            text = segment.text.strip()
            if not text:
                continue
            full.append(text)
            if segment.start is None or (at is not None and at <= segment.start):
                continue
            share = 1.0 if at is None else (at - segment.start) / max(segment.duration, 1e-6)
            if share >= 1.0:
                heard.append(text)
            else:
                words = text.split()
                heard.extend(words[: int(len(words) * share)])
        return " ".join(full), " ".join(heard)


class HeardContext(FrameProcessor):
    """Right before the model is asked again, its context gets the agent's last interrupted turn
    as the caller heard it (not as it was generated)."""

    def __init__(self) -> None:
        super().__init__(name="HeardContext")
        self.cut: tuple[str, str] | None = None  # (generated, heard) of the last interrupted turn

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame) and self.cut is not None:
            apply_cut(frame.context, *self.cut)
            self.cut = None
        await self.push_frame(frame, direction)


def apply_cut(context: LLMContext, generated: str, heard: str) -> None:
    """Replace the agent's interrupted message with what was heard; add it when the aggregator
    kept nothing (cut inside the first sentence); drop it when nothing was heard."""
    messages: list[Any] = list(context.get_messages())
    last_user = max((i for i, m in enumerate(messages) if _role(m) == "user"), default=len(messages))
    for i in range(len(messages) - 1, -1, -1):
        message = messages[i]
        content = message.get("content") if isinstance(message, dict) else None
        if _role(message) == "assistant" and isinstance(content, str) and content.strip():
            said, kept = _words(heard), _words(content)
            if said[: len(kept)] == kept or kept[: len(said)] == said or content.strip() in generated:
                if heard:
                    messages[i] = {**message, "content": heard}
                else:
                    del messages[i]
                context.set_messages(messages)
                return
            break
    if heard:
        messages.insert(last_user, {"role": "assistant", "content": heard})
        context.set_messages(messages)


def _role(message: Any) -> str | None:
    return message.get("role") if isinstance(message, dict) else None


def _words(text: str) -> list[str]:
    return text.split()
