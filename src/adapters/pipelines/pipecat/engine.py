"""The `pipecat` engine: Pipecat's services and turn-taking over our `ActiveCall`.

What is ours, and why:

- **The transport** (`CallInput`, `CallOutput`): the VAD runs on the caller's audio (16-bit PCM,
  8 kHz) as it arrives, and only speech enters the pipeline, as Pipecat audio frames; agent audio
  goes out through the call's pacer, never more than `LEAD` ahead of what the caller has heard,
  so "the bot stopped speaking" is true when Pipecat says it and an interruption's `clear`
  silences the line at once.
- **Playback tracking** (`Playback`): each sentence the agent speaks is laid over the call's playback
  timeline, so a turn cut by barge-in is cut where the caller stopped hearing it, in the
  transcript and (`HeardContext`) in what the model is shown next.
- **One VAD model per process** (`vad.py`): Silero's ONNX session is loaded once, and the windows
  of all calls are scored in one model run every 30 ms; each call keeps only its own recurrent
  state (Pipecat loads one model per call: ~10 MB and a load on the event loop each time).
- **Start-up overlaps the handshake**: the greeting and the apology are synthesised (or taken
  from the process's cache) while the provider's session is being validated.
- **Never silence**: every OpenAI-compatible request is retried once; a service that still fails
  makes the agent apologise (pre-synthesised audio, so a failing TTS can apologise too) and end
  the call, and the run says which service failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import soxr
import structlog
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams
from pipecat.audio.vad.vad_controller import VADController
from pipecat.frames.frames import (
    AggregatedTextFrame,
    BotSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EndFrame,
    ErrorFrame,
    Frame,
    FunctionCallResultProperties,
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    LLMContextFrame,
    LLMRunFrame,
    MetricsFrame,
    OutputAudioRawFrame,
    StartFrame,
    TTSSpeakFrame,
    TTSTextFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.metrics.metrics import TTFBMetricsData
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor, FrameProcessorSetup
from pipecat.services.llm_service import FunctionCallParams
from pipecat.services.stt_service import SegmentedSTTService
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import TransportParams
from pipecat.turns.user_stop.speech_timeout_user_turn_stop_strategy import (
    SpeechTimeoutUserTurnStopStrategy,
)
from pipecat.turns.user_turn_strategies import UserTurnStrategies
from pipecat.workers.runner import WorkerRunner

from adapters.pipelines.pipecat.logs import route_pipecat_logs
from adapters.pipelines.pipecat.services import OPENAI_SPEECH_RATE, SharedHttp, build_services
from adapters.pipelines.pipecat.settings import PipecatSettings, ServiceBlock
from adapters.pipelines.pipecat.vad import CallVad, SileroBatch, silero_session
from application.ports.calls import (
    ActiveCall,
    AgentPipeline,
    AgentSession,
    CallControlError,
    CallJournal,
    CallOutcome,
)
from application.ports.repositories import StorageError
from domain.agents import AgentDefinition
from domain.close_policy import Close, CloseCode
from domain.stream_events import AudioIn, DtmfIn, StopIn
from domain.workflow_run import EndReason

log = structlog.get_logger(__name__)

CALL_RATE = 8000  # Hz, 16-bit mono: the ActiveCall's PCM both ways
BYTES_PER_SECOND = 2 * CALL_RATE
LEAD = 0.1  # seconds of agent audio allowed ahead of the caller's playback
GOODBYE_WAIT = 5.0  # at most this long for the agent's last words before a hang-up or transfer
STOP_TIMEOUT = 5.0  # for the pipeline to wind down once the call has ended
JOURNAL_GATHER = 0.1  # seconds the journal waits for more entries before a store
PREROLL_FRAMES = 50  # 1 s of caller audio kept before speech starts (a segmented STT's own buffer)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


# -- process-wide parts ------------------------------------------------------------------------


class SpeechCache:
    """Fixed phrases (greetings, apologies) as 8 kHz PCM, synthesised once per voice and text.

    Only OpenAI-compatible speech is fetched here (one HTTP request); other providers speak these
    phrases through the pipeline like any other turn.
    """

    def __init__(self, http: SharedHttp, max_entries: int = 256) -> None:
        self._entries: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self._pending: dict[tuple[Any, ...], asyncio.Future[bytes | None]] = {}
        self._max = max_entries
        self._http = http

    async def get(self, block: ServiceBlock, text: str) -> bytes | None:
        if block.provider != "openai" or not text:
            return None
        key = (*block.cache_key(), text)
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
            return found
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            pcm = await self._synthesise(block, text)
        except BaseException as exc:
            future.set_result(None)
            if not isinstance(exc, Exception):
                raise
            log.warning("speech_cache_miss", provider=block.provider, error=type(exc).__name__)
            return None
        finally:
            del self._pending[key]
        future.set_result(pcm)
        self._entries[key] = pcm
        if len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return pcm

    async def _synthesise(self, block: ServiceBlock, text: str) -> bytes:
        body = {"model": block.model or "gpt-4o-mini-tts", "input": text, "voice": block.voice or "alloy"}
        pcm = await self._http.endpoint(block).post(
            "tts", "/audio/speech", json={**body, "response_format": "pcm"}
        )
        samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype=np.int16)
        return to_call_rate(samples, OPENAI_SPEECH_RATE)


def to_call_rate(samples: np.ndarray[Any, Any], rate: int) -> bytes:
    if rate == CALL_RATE:
        return samples.astype(np.int16).tobytes()
    resampled = soxr.resample(samples.astype(np.float32), rate, CALL_RATE, quality="HQ")
    return bytes(np.clip(resampled, -32768, 32767).astype(np.int16).tobytes())


# -- the engine --------------------------------------------------------------------------------


class PipecatPipeline(AgentPipeline):
    def __init__(self, environ: dict[str, str] | None = None) -> None:
        route_pipecat_logs()
        self.vad = SileroBatch(silero_session())  # loaded now, not on the event loop during a call
        self._environ = environ
        self.http = SharedHttp()
        self.speech = SpeechCache(self.http)

    def prepare(
        self, definition: AgentDefinition, context: dict[str, Any], journal: CallJournal
    ) -> AgentSession:
        settings = PipecatSettings.from_definition(definition, context, self._environ)
        return PipecatSession(self, settings, journal)

    async def aclose(self) -> None:
        await self.http.aclose()


@dataclass(slots=True)
class _Warm:
    greeting: bytes | None = None
    apology: bytes | None = None


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

    @property
    def speaking(self) -> bool:
        return bool(self._segments or self._queued) or self._call.playing()

    # queue side: in the order Pipecat queues frames on the output
    def queue_text(self, text: str) -> None:
        self._receiving = _Segment(text)
        self._queued.append(self._receiving)

    def queue_audio(self, seconds: float) -> None:
        if self._receiving is None:  # audio without a sentence's text
            self.queue_text("")
        assert self._receiving is not None  # noqa: S101 - set just above
        self._receiving.duration += seconds  # it may already be playing

    # write side: in the order the output writes them
    def announce(self) -> None:
        """The next queued sentence's audio comes next."""
        if self._queued:
            self._segments.append(self._queued.popleft())

    async def speak(self, text: str, pcm: bytes) -> None:
        """Queue a whole phrase at once (the greeting, the apology), outside Pipecat's queue; the
        call's pacer plays it while the caller can still talk over it."""
        self._segments.append(_Segment(text, len(pcm) / BYTES_PER_SECOND))
        await self.write(pcm, pace=False)

    async def write(self, pcm: bytes, pace: bool = True) -> None:
        """Queue audio for the caller; with `pace`, return only once it is at most `LEAD` ahead of
        the caller's ear (so Pipecat's idea of "speaking" follows what the caller hears)."""
        self._written = max(self._written, self._call.played_seconds())  # after a pause: starts now
        if not self._segments:
            if self._queued:
                self.announce()
            else:
                self._segments.append(_Segment("", len(pcm) / BYTES_PER_SECOND))
        segment = self._segments[-1]
        if segment.start is None:
            segment.start = self._written
        if self.turn_audio_at is None:
            self.turn_audio_at = time.monotonic()
            if self.on_first_audio is not None:
                self.on_first_audio(self.turn_audio_at)
        await self._call.play(pcm)
        self._written += len(pcm) / BYTES_PER_SECOND
        ahead = self._written - self._call.played_seconds() - LEAD
        if pace and ahead > 0:
            await asyncio.sleep(ahead)

    async def interrupt(self) -> None:
        """Barge-in: silence the line at once and end the turn where the caller stopped hearing it."""
        at = self._call.played_seconds()
        if self._call.playing():  # Pipecat interrupts on every caller turn; `clear` only what plays
            await self._call.clear()
        self._written = at
        self.cut(at)

    def cut(self, at: float) -> None:
        """End the current turn at playback position `at` (a barge-in, or the call ending)."""
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


class CallInput(BaseInputTransport):
    """Caller audio and DTMF from the `ActiveCall` into the pipeline; `StopIn` ends the session.

    The VAD runs here, on each frame as it arrives (Pipecat's own `VADController` over the shared
    Silero model), and its frames lead the caller's audio into the pipeline. With `gate`, audio
    enters only while the caller speaks, with up to a second before (what a segmented STT keeps
    of it anyway): a caller who listens costs no pipeline work, where each frame would otherwise
    take several queue hops 50 times a second. A streaming STT or a speech-to-speech model hears
    every frame.
    """

    def __init__(
        self,
        call: ActiveCall,
        params: TransportParams,
        vad: VADAnalyzer,
        gate: bool,
        on_stop: Callable[[], None],
    ) -> None:
        super().__init__(params, name="CallInput")
        self._call = call
        self._on_stop = on_stop
        self._pump: asyncio.Task[None] | None = None
        self._gate = gate
        self._speaking = False
        self._preroll: deque[InputAudioRawFrame] = deque(maxlen=PREROLL_FRAMES)
        self._vad = VADController(vad)
        self._vad.add_event_handler("on_speech_started", self._speech_started)
        self._vad.add_event_handler("on_speech_stopped", self._speech_stopped)
        self._vad.add_event_handler("on_push_frame", self._controller_push)
        self._vad.add_event_handler("on_broadcast_frame", self._controller_broadcast)

    async def setup(self, setup: FrameProcessorSetup) -> None:  # type: ignore[override]
        await super().setup(setup)
        await self._vad.setup(setup)

    async def cleanup(self) -> None:
        await super().cleanup()  # type: ignore[no-untyped-call]
        await self._vad.cleanup()  # type: ignore[no-untyped-call]

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)
        await self._vad.start()  # type: ignore[no-untyped-call]  # announces the VAD's parameters to the turn strategies
        if self._pump is None:
            self._pump = self.create_task(self._receive())

    async def stop(self, frame: EndFrame) -> None:
        await super().stop(frame)
        await self._stop_pump()

    async def cancel(self, frame: CancelFrame) -> None:
        await super().cancel(frame)
        await self._stop_pump()

    async def _stop_pump(self) -> None:
        await self._vad.stop()  # type: ignore[no-untyped-call]
        if self._pump is not None:
            await self.cancel_task(self._pump)
            self._pump = None

    async def _receive(self) -> None:
        async for event in self._call.events():
            if type(event) is AudioIn:
                await self._hear(InputAudioRawFrame(audio=event.pcm, sample_rate=CALL_RATE, num_channels=1))
            elif isinstance(event, DtmfIn):
                with contextlib.suppress(ValueError):
                    await self.push_frame(InputDTMFFrame(button=KeypadEntry(event.digit)))
            elif isinstance(event, StopIn):
                self._on_stop()
                return

    async def _hear(self, frame: InputAudioRawFrame) -> None:
        if self._speaking or not self._gate:
            await self.push_frame(frame)
        else:
            self._preroll.append(frame)  # pushed if this frame starts speech
        await self._vad.process_frame(frame)  # its frames follow the audio they are about

    # the VAD controller's events, as Pipecat's user aggregator turns them into frames (but for
    # the periodic "user speaking": only idle time-outs, off here, and wake phrases read it)
    async def _speech_started(self, controller: VADController) -> None:
        self._speaking = True
        while self._preroll:
            await self.push_frame(self._preroll.popleft())
        start_secs = controller._vad_analyzer.params.start_secs
        await self.push_frame(VADUserStartedSpeakingFrame(start_secs=start_secs))

    async def _speech_stopped(self, controller: VADController) -> None:
        self._speaking = False
        stop_secs = controller._vad_analyzer.params.stop_secs
        await self.push_frame(VADUserStoppedSpeakingFrame(stop_secs=stop_secs))

    async def _controller_push(self, _: VADController, frame: Frame, direction: FrameDirection) -> None:
        await self.push_frame(frame, direction)

    async def _controller_broadcast(self, _: VADController, frame_cls: type[Frame], **kwargs: Any) -> None:
        await self.push_frame(frame_cls(**kwargs))  # downstream: nothing is upstream of the input


class CallOutput(BaseOutputTransport):
    """Agent audio to the call through `Playback`; interruptions become the call's `clear`."""

    def __init__(self, playback: Playback, recorder: TurnRecorder, params: TransportParams) -> None:
        super().__init__(params, name="CallOutput")
        self._playback = playback
        self._recorder = recorder

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if direction is FrameDirection.DOWNSTREAM:
            if isinstance(frame, OutputAudioRawFrame):
                self._playback.queue_audio(len(frame.audio) / (2 * frame.sample_rate * frame.num_channels))
            elif _announces(frame):
                self._playback.queue_text(frame.text)  # type: ignore[attr-defined]
            else:
                self._recorder.on_frame(frame)
        if isinstance(frame, InterruptionFrame):  # before Pipecat's own handling ends the turn
            await self._playback.interrupt()
        await super().process_frame(frame, direction)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        await self._playback.write(frame.audio)
        return True

    async def write_transport_frame(self, frame: Frame) -> None:
        if _announces(frame):  # in order with the audio: a sentence's text comes just before it
            self._playback.announce()

    async def push_frame(self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM) -> None:
        # Every frame pushed costs a queue hop per processor it crosses. Pipecat's periodic "bot
        # speaking" frame would cross all of them both ways five times a second, for the idle
        # time-out (off) and wake-phrase strategies (unused); audio and metrics were read here, and
        # the assistant aggregator after the output reads neither.
        if isinstance(frame, BotSpeakingFrame):
            return
        if direction is FrameDirection.DOWNSTREAM:
            if isinstance(frame, OutputAudioRawFrame | MetricsFrame):
                return
            if isinstance(frame, BotStoppedSpeakingFrame):
                self._playback.turn_done()
        await super().push_frame(frame, direction)


def _announces(frame: Frame) -> bool:
    """The text of a sentence about to be spoken (TTSTextFrame, a subclass, follows its audio)."""
    return (
        isinstance(frame, AggregatedTextFrame)
        and not isinstance(frame, TTSTextFrame)
        and frame.will_be_spoken
    )


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


@dataclass(slots=True)
class _Turn:
    speech_end: float  # when the caller went quiet: `stop_secs` before the VAD said so
    stt: float | None = None
    llm_first_token: float | None = None
    tts_first_byte: float | None = None
    recorded: bool = False
    at: str = field(default_factory=_now_iso)


class TurnRecorder:
    """Per-turn latency from what reaches the output: the VAD's end of speech (pushed by the input
    transport) and the services' time-to-first-byte metrics. Fed by `CallOutput`, not by a
    Pipecat observer: an observer is handed every frame of every call through a queue and a task.
    """

    def __init__(self, session: PipecatSession, vad_stop_secs: float) -> None:
        self._session = session
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

    def first_audio(self, at: float) -> None:
        turn = self.turn
        if turn is None or turn.recorded:
            return
        turn.recorded = True
        self._session.record(
            "turns",
            {
                "at": turn.at,
                "stt_ms": _ms(turn.stt),
                "llm_first_token_ms": _ms(turn.llm_first_token),
                "tts_first_byte_ms": _ms(turn.tts_first_byte),
                "voice_to_voice_ms": _ms(at - turn.speech_end),
            },
        )


class PipecatSession(AgentSession):
    def __init__(self, engine: PipecatPipeline, settings: PipecatSettings, journal: CallJournal) -> None:
        self._engine = engine
        self._settings = settings
        self._journal = journal
        self._writes: asyncio.Queue[tuple[str, dict[str, Any]] | None] = asyncio.Queue()
        self._writer = asyncio.create_task(self._write_journal())
        self._warm = asyncio.create_task(self._warm_up())
        self._ended = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._failure: str | None = None
        self._failing = False
        self._call: ActiveCall | None = None
        self._playback: Playback | None = None
        self._apology: bytes | None = None
        self._worker: PipelineWorker | None = None
        self._heard = HeardContext()

    # -- journal: stored in order, off the media path -------------------------------------------

    def record(self, key: str, entry: dict[str, Any]) -> None:
        self._writes.put_nowait((key, entry))

    def record_line(self, role: str, text: str, interrupted: bool = False) -> None:
        line: dict[str, Any] = {"role": role, "text": text, "at": _now_iso()}
        if interrupted:
            line["interrupted"] = True
        self.record("transcript", line)

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

    # -- start-up, while the handshake is validated ---------------------------------------------

    async def _warm_up(self) -> _Warm:
        tts = self._settings.tts
        if tts is None:
            return _Warm()
        greeting, apology = await asyncio.gather(
            self._engine.speech.get(tts, self._settings.greeting or ""),
            self._engine.speech.get(tts, self._settings.apology),
        )
        return _Warm(greeting, apology)

    async def aclose(self) -> None:
        self._warm.cancel()
        for task in list(self._tasks):
            task.cancel()
        if not self._writer.done():
            self._writes.put_nowait(None)
            with contextlib.suppress(Exception):
                await self._writer

    # -- the call ---------------------------------------------------------------------------------

    async def run(self, call: ActiveCall) -> CallOutcome:
        self._call = call
        warm = await self._warm
        recorder = TurnRecorder(self, self._settings.vad_stop_secs)
        playback = Playback(call, self._turn_ended)
        playback.on_first_audio = recorder.first_audio
        self._playback = playback
        self._apology = warm.apology
        greeting = self._settings.greeting
        if greeting and warm.greeting:
            await playback.speak(greeting, warm.greeting)  # before the pipeline is even built
            await asyncio.sleep(0)  # let the pacer send the first frame before the build's CPU work

        worker = self._worker = self._build(call, playback, recorder)
        if greeting and not warm.greeting:
            # spoken by the pipeline's TTS; a speech-to-speech model is asked to say it
            await worker.queue_frame(TTSSpeakFrame(greeting) if self._settings.tts else LLMRunFrame())
        runner = WorkerRunner(handle_sigint=False, check_dangling_tasks=False)
        await runner.add_workers(worker)
        running = asyncio.create_task(runner.run())
        ended = asyncio.create_task(self._ended.wait())
        try:
            async with asyncio.timeout(self._settings.max_call_seconds):
                await asyncio.wait({running, ended}, return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            await call.hang_up(EndReason.MAX_DURATION)
        finally:
            ended.cancel()
            if not running.done():
                await worker.cancel(reason="call ended")
            try:
                async with asyncio.timeout(STOP_TIMEOUT):
                    await running
            except TimeoutError:
                log.warning("pipeline_stop_timeout")
                running.cancel()
            for task in list(self._tasks):
                task.cancel()
        playback.cut(call.played_seconds())  # a turn still playing ends where the caller left it
        if not self._ended.is_set() and call.ended_by is None:
            # The pipeline stopped on its own: never leave the caller in silence.
            self._failure = self._failure or "pipeline stopped"
            await call.hang_up(EndReason.ERROR, self._failure_close())
        self._writes.put_nowait(None)
        await self._writer
        return self._outcome(call)

    def _outcome(self, call: ActiveCall) -> CallOutcome:
        if self._failure is not None:
            return CallOutcome(EndReason.ERROR, {"error": self._failure}, self._failure_close())
        return CallOutcome(call.ended_by or EndReason.CALLER_HANGUP)

    def _failure_close(self) -> Close:
        return Close(CloseCode.INTERNAL_ERROR, f"Agent failed: {self._failure}"[:123])

    def _turn_ended(self, generated: str, heard: str, interrupted: bool) -> None:
        if interrupted:
            self._heard.cut = (generated, heard)
        if heard:
            self.record_line("agent", heard, interrupted=interrupted)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- building the pipeline ------------------------------------------------------------------

    def _build(self, call: ActiveCall, playback: Playback, recorder: TurnRecorder) -> PipelineWorker:
        settings = self._settings
        services = build_services(settings, CALL_RATE, self._engine.http)
        messages: list[Any] = []  # the system prompt is the LLM service's system instruction
        if settings.greeting and settings.tts:
            messages.append({"role": "assistant", "content": settings.greeting})
        elif settings.greeting:  # a speech-to-speech model says the greeting itself
            cue = f"(The call has connected. Say: {settings.greeting})"
            messages.append({"role": "user", "content": cue})
        context = LLMContext(messages=messages, tools=ToolsSchema(standard_tools=self._tools()))
        vad = CallVad(VADParams(stop_secs=settings.vad_stop_secs), self._engine.vad)
        aggregators = LLMContextAggregatorPair(
            context,
            user_params=LLMUserAggregatorParams(
                user_turn_strategies=UserTurnStrategies(
                    stop=[SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=settings.turn_stop_secs)]
                ),
            ),
            realtime_service_mode=services.realtime,
        )
        params = TransportParams(
            audio_in_enabled=True,
            audio_in_sample_rate=CALL_RATE,
            audio_out_enabled=True,
            audio_out_sample_rate=CALL_RATE,
            audio_out_10ms_chunks=10,  # 100 ms per write: our pacer slices the 20 ms frames
            audio_out_end_silence_secs=0,
            audio_out_auto_silence=False,
        )
        gate = isinstance(services.stt, SegmentedSTTService)  # it hears only speech anyway
        transport_in = CallInput(call, params, vad, gate, self._ended.set)
        transport_out = CallOutput(playback, recorder, params)
        llm = services.llm
        llm.register_function("end_call", self._end_call)
        llm.register_function("transfer_call", self._transfer_call, timeout_secs=120)
        stages: list[FrameProcessor] = [transport_in]
        if services.stt is not None:
            stages.append(services.stt)
        user = aggregators.user()
        stages += [user, self._heard, llm]
        if services.tts is not None:
            stages.append(services.tts)
        stages += [transport_out, aggregators.assistant()]

        @user.event_handler("on_user_turn_stopped")
        async def on_caller_turn(_: Any, __: Any, message: Any) -> None:
            text = (message.content or "").strip()
            if text:
                self.record_line("caller", text)

        recorder.watch("stt", services.stt)
        recorder.watch("llm", llm)
        recorder.watch("tts", services.tts)
        worker = PipelineWorker(
            Pipeline(stages),
            params=PipelineParams(
                audio_in_sample_rate=CALL_RATE, audio_out_sample_rate=CALL_RATE, enable_metrics=True
            ),
            idle_timeout_secs=None,
            enable_rtvi=False,
            enable_turn_tracking=False,
            check_dangling_tasks=False,
        )
        failing = {
            p.name: kind for kind, p in (("stt", services.stt), ("llm", llm), ("tts", services.tts)) if p
        }

        @worker.event_handler("on_pipeline_error")
        async def on_error(_: PipelineWorker, frame: ErrorFrame) -> None:
            processor = getattr(frame, "processor", None)
            kind = failing.get(processor.name) if processor is not None else None
            if kind is not None or frame.fatal:
                self._fail(kind or "pipeline", frame.error)

        return worker

    def _tools(self) -> list[FunctionSchema]:
        return [
            FunctionSchema(
                name="end_call",
                description="Hang up the call. Say goodbye first; call this when the conversation is over.",
                properties={},
                required=[],
            ),
            FunctionSchema(
                name="transfer_call",
                description="Transfer the caller to another phone number or SIP address.",
                properties={"destination": {"type": "string", "description": "E.164 number or sip: URI"}},
                required=["destination"],
            ),
        ]

    # -- tools and failures -----------------------------------------------------------------------

    async def _end_call(self, params: FunctionCallParams) -> None:
        await params.result_callback({"ok": True}, properties=FunctionCallResultProperties(run_llm=False))
        log.info("agent_end_call")
        self._spawn(self._after_last_words(self._hang_up))

    async def _hang_up(self) -> None:
        assert self._call is not None  # noqa: S101 - tools run during run()
        await self._call.hang_up(EndReason.AGENT_HANGUP)

    async def _transfer_call(self, params: FunctionCallParams) -> None:
        assert self._call is not None  # noqa: S101 - tools run during run()
        destination = str(params.arguments.get("destination", "")).strip()
        if destination not in self._settings.transfer_destinations:
            log.info("agent_transfer_refused")
            await params.result_callback(
                {"ok": False, "error": "That destination is not allowed; the call was not transferred."}
            )
            return
        log.info("agent_transfer")
        await self._after_last_words(None)
        try:
            await self._call.transfer(destination)
        except CallControlError:
            await params.result_callback(
                {"ok": False, "error": "The transfer failed; the caller is still here."}
            )
            return
        await params.result_callback({"ok": True}, properties=FunctionCallResultProperties(run_llm=False))

    async def _after_last_words(self, then: Callable[[], Awaitable[None]] | None) -> None:
        """Wait (at most `GOODBYE_WAIT`) for what the agent is saying with the tool call."""
        playback = self._playback
        assert playback is not None  # noqa: S101 - tools run during run()
        deadline = time.monotonic() + GOODBYE_WAIT
        await asyncio.sleep(0.3)  # its sentence may still be on its way from the TTS
        while playback.speaking and time.monotonic() < deadline:  # noqa: ASYNC110 - a clock, not an event
            await asyncio.sleep(0.05)
        if then is not None:
            await then()

    def _fail(self, kind: str, error: str) -> None:
        if self._failing:
            return
        self._failing = True
        self._failure = f"{kind} failed"
        log.warning("agent_service_failed", service=kind, error=error[:200])
        self._spawn(self._apologise(spoken_by_tts=kind != "tts"))

    async def _apologise(self, spoken_by_tts: bool) -> None:
        """The cached apology when there is one; else the pipeline's TTS says it, unless the TTS is
        what failed. Then the call ends through the provider."""
        playback = self._playback
        assert self._call is not None  # noqa: S101 - failures happen during run()
        assert playback is not None  # noqa: S101
        await playback.interrupt()
        if self._apology:
            await playback.speak(self._settings.apology, self._apology)
            playback.turn_done()
        elif spoken_by_tts and self._settings.tts is not None and self._worker is not None:
            await self._worker.queue_frame(TTSSpeakFrame(self._settings.apology))
            await self._after_last_words(None)
        await self._call.hang_up(EndReason.ERROR, self._failure_close())
