"""What a call leaves in its run's journal: the transcript lines and each turn's latency figures.

`JournalWriter` stores entries in order, off the media path (a task of its own, a few entries per
store); `TurnRecorder` measures each turn's latency from what reaches the output transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from pipecat.frames.frames import Frame, MetricsFrame, VADUserStoppedSpeakingFrame
from pipecat.metrics.metrics import TTFBMetricsData
from pipecat.processors.frame_processor import FrameProcessor

from application.ports.live_call import CallJournal
from application.ports.repositories import StorageError
from application.ports.tracing import NO_SPAN, FinishedSpan, TraceSpan

log = structlog.get_logger(__name__)

JOURNAL_GATHER = 0.1  # seconds the journal waits for more entries before a store


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


class JournalWriter:
    """The run's journal entries, stored in order by a task of their own: a store never holds up
    the call, and a database that is away costs a warning (the run's end is stored later)."""

    def __init__(self, journal: CallJournal) -> None:
        self._journal = journal
        self._writes: asyncio.Queue[tuple[str, dict[str, Any]] | None] = asyncio.Queue()
        self._writer = asyncio.create_task(self._write_journal())

    def record(self, key: str, entry: dict[str, Any]) -> None:
        self._writes.put_nowait((key, entry))

    def record_line(self, role: str, text: str, interrupted: bool = False) -> None:
        line: dict[str, Any] = {"role": role, "text": text, "at": _now_iso()}
        if interrupted:
            line["interrupted"] = True
        self.record("transcript", line)

    async def finish(self) -> None:
        """Store what is queued, then stop (the call has ended)."""
        self._writes.put_nowait(None)
        await self._writer

    async def aclose(self) -> None:
        """Stop, if not done already, storing what is queued; never raises."""
        if not self._writer.done():
            self._writes.put_nowait(None)
            with contextlib.suppress(Exception):
                await self._writer

    async def _write_journal(self) -> None:
        """Store entries in order; what queued up during a store, or within `JOURNAL_GATHER` of
        the first entry, goes in one store (a turn's caller line and figures come ~20 ms apart)."""
        done = False
        while not done:
            batch = [await self._writes.get()]
            if batch[0] is not None:
                await asyncio.sleep(JOURNAL_GATHER)
            while not self._writes.empty():
                batch.append(self._writes.get_nowait())
            done = batch[-1] is None
            entries = [item for item in batch if item is not None]
            if entries:
                try:
                    await self._journal.append(entries)
                except StorageError as exc:  # the database is away: the run's end is stored later
                    log.warning("journal_write_failed", error=str(exc)[:200])
                except Exception:
                    log.exception("journal_write_failed")


@dataclass(slots=True)
class _Turn:
    speech_end: float  # when the caller went quiet: `stop_secs` before the VAD said so
    stt: float | None = None
    llm_first_token: float | None = None
    tts_first_byte: float | None = None
    arrived: dict[str, float] = field(default_factory=dict)  # when each figure reached the output
    recorded: bool = False
    at: str = field(default_factory=_now_iso)


class TurnRecorder:
    """Per-turn latency from what reaches the output: the VAD's end of speech (pushed by the input
    transport) and the services' time-to-first-byte metrics. Fed by `CallOutput`, not by a
    Pipecat observer: an observer is handed every frame of every call through a queue and a task.
    """

    def __init__(self, journal: JournalWriter, vad_stop_secs: float, trace: TraceSpan = NO_SPAN) -> None:
        self._journal = journal
        self._trace = trace  # the call's session span: each turn becomes a span under it
        self._vad_stop_secs = vad_stop_secs
        self.turn: _Turn | None = None
        self._names: dict[str, str] = {}

    def watch(self, kind: str, processor: FrameProcessor | None) -> None:
        if processor is not None:
            self._names[processor.name] = kind

    def on_frame(self, frame: Frame) -> None:
        if isinstance(frame, VADUserStoppedSpeakingFrame):
            # the VAD confirms the end of speech `stop_secs` after the caller went quiet
            self.turn = _Turn(speech_end=time.monotonic() - self._vad_stop_secs)
        elif isinstance(frame, MetricsFrame) and self.turn is not None:
            for item in frame.data:
                if isinstance(item, TTFBMetricsData):
                    self._ttfb(self.turn, self._names.get(item.processor), item.value)

    @staticmethod
    def _ttfb(turn: _Turn, kind: str | None, value: float) -> None:
        if kind == "stt" and turn.stt is None:
            turn.stt = value
        elif kind == "llm" and turn.llm_first_token is None:
            turn.llm_first_token = value
        elif kind == "tts" and turn.tts_first_byte is None:
            turn.tts_first_byte = value
        else:
            return
        turn.arrived[kind] = time.monotonic()

    def first_audio(self, at: float) -> None:
        turn = self.turn
        if turn is None or turn.recorded:
            return
        turn.recorded = True
        figures = {
            "at": turn.at,
            "stt_ms": _ms(turn.stt),
            "llm_first_token_ms": _ms(turn.llm_first_token),
            "tts_first_byte_ms": _ms(turn.tts_first_byte),
            "voice_to_voice_ms": _ms(at - turn.speech_end),
        }
        self._journal.record("turns", figures)
        if self._trace is not NO_SPAN:
            self._trace.record(turn_span(turn, at, figures))


TURN_SPAN = "agent_stream.turn"
STEP_SPANS = {"stt": "agent_stream.stt", "llm": "agent_stream.llm", "tts": "agent_stream.tts"}


def turn_span(turn: _Turn, first_audio: float, figures: dict[str, Any]) -> FinishedSpan:
    """A turn as a span, from the caller going quiet to the agent's first audio, with a child per
    service: from its request to its first byte (the time-to-first-byte figure, ending when it
    reached the output; Pipecat starts the transcription's clock at the VAD's own end of speech, a
    few ms before ours, so a child starts no earlier than its turn)."""
    waits = {"stt": turn.stt, "llm": turn.llm_first_token, "tts": turn.tts_first_byte}
    steps = tuple(
        FinishedSpan(
            STEP_SPANS[kind],
            max(arrived - wait, turn.speech_end),
            arrived,
            {"agent_stream.ttfb_ms": round(wait * 1000)},
        )
        for kind, arrived in turn.arrived.items()
        if (wait := waits[kind]) is not None
    )
    attributes = {f"agent_stream.{k}": v for k, v in figures.items() if v is not None and k != "at"}
    return FinishedSpan(TURN_SPAN, turn.speech_end, first_audio, attributes, steps)
