"""How one call's Pipecat pipeline is put together: the process's shared parts (`EngineParts`), the
call's services and turn-taking, our transports at both ends, and the agent's tools.

caller audio → `CallInput` (VAD) → STT → user aggregator → `HeardContext` → LLM → TTS →
`CallOutput` → assistant aggregator. A speech-to-speech model is the LLM, without STT and TTS.

A caller's turn starts when the VAD hears speech (held back while the agent speaks until it is no
backchannel: `CallInput`), and ends after `vad.turn_stop_secs` of silence, or, with
`turn_detection: "smart_turn"`, when the Smart Turn model calls it finished at a pause (at the
latest after `turn_fallback_secs` of silence).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.frames.frames import ErrorFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.services.llm_service import FunctionCallParams
from pipecat.services.stt_service import SegmentedSTTService
from pipecat.transports.base_transport import TransportParams
from pipecat.turns.user_start.vad_user_turn_start_strategy import VADUserTurnStartStrategy
from pipecat.turns.user_stop.base_user_turn_stop_strategy import BaseUserTurnStopStrategy
from pipecat.turns.user_stop.speech_timeout_user_turn_stop_strategy import (
    SpeechTimeoutUserTurnStopStrategy,
)
from pipecat.turns.user_stop.turn_analyzer_user_turn_stop_strategy import (
    TurnAnalyzerUserTurnStopStrategy,
)
from pipecat.turns.user_turn_strategies import UserTurnStrategies

from adapters.pipelines.pcm import CALL_RATE
from adapters.pipelines.pipecat.journal import TurnRecorder
from adapters.pipelines.pipecat.playback import HeardContext, Playback
from adapters.pipelines.pipecat.services import SharedHttp, build_services
from adapters.pipelines.pipecat.settings import PipecatSettings
from adapters.pipelines.pipecat.smart_turn import CallSmartTurn, SmartTurnModel, SmartTurnModels
from adapters.pipelines.pipecat.speech_cache import SpeechCache
from adapters.pipelines.pipecat.transport import CallInput, CallOutput
from adapters.pipelines.pipecat.vad import CallVad, SileroBatch
from application.ports.live_call import ActiveCall
from application.ports.tracing import NO_TRACER, Tracer


@dataclass(frozen=True, slots=True)
class EngineParts:
    """What every call of the process shares: the VAD model, the HTTP pools, the speech cache,
    the end-of-turn model (loaded when an agent first asks for it)."""

    vad: SileroBatch
    http: SharedHttp
    speech: SpeechCache
    smart_turn: SmartTurnModels
    tracer: Tracer = NO_TRACER


class CallHooks(Protocol):
    """What the pipeline reports to the call's agent, and the tools the model may call."""

    def stopped(self) -> None:
        """The caller's side ended the stream."""

    def caller_said(self, text: str) -> None:
        """The caller's turn, as transcribed."""

    def failed(self, kind: str, error: str) -> None:
        """A service (`stt`, `llm`, `tts`) or the pipeline failed."""

    async def end_call(self, params: FunctionCallParams) -> None: ...

    async def transfer_call(self, params: FunctionCallParams) -> None: ...


def tools() -> list[FunctionSchema]:
    """The agent's tools: a fresh list for each call's context."""
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


def build_worker(
    call: ActiveCall,
    settings: PipecatSettings,
    parts: EngineParts,
    playback: Playback,
    recorder: TurnRecorder,
    heard: HeardContext,
    hooks: CallHooks,
    turn_model: SmartTurnModel | None = None,
) -> PipelineWorker:
    """The call's pipeline, ready to run; `turn_model` for `turn_detection: "smart_turn"`."""
    services = build_services(settings, CALL_RATE, parts.http)
    messages: list[Any] = []  # the system prompt is the LLM service's system instruction
    if settings.greeting and settings.tts:
        messages.append({"role": "assistant", "content": settings.greeting})
    elif settings.greeting:  # a speech-to-speech model says the greeting itself
        cue = f"(The call has connected. Say: {settings.greeting})"
        messages.append({"role": "user", "content": cue})
    context = LLMContext(messages=messages, tools=ToolsSchema(standard_tools=tools()))
    vad = CallVad(VADParams(stop_secs=settings.vad_stop_secs), parts.vad)
    stop: BaseUserTurnStopStrategy = SpeechTimeoutUserTurnStopStrategy(
        user_speech_timeout=settings.turn_stop_secs
    )
    if turn_model is not None:
        analyser = CallSmartTurn(turn_model, settings.turn_fallback_secs)
        stop = TurnAnalyzerUserTurnStopStrategy(turn_analyzer=analyser)
    aggregators = LLMContextAggregatorPair(
        context,
        user_params=LLMUserAggregatorParams(
            # the VAD alone starts a turn (`CallInput` holds back backchannels): a transcript
            # does not, as it would for a backchannel a streaming STT transcribed
            user_turn_strategies=UserTurnStrategies(start=[VADUserTurnStartStrategy()], stop=[stop]),
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
    transport_in = CallInput(
        call,
        params,
        vad,
        gate,
        hooks.stopped,
        agent_speaking=lambda: playback.audible,
        backchannel_secs=settings.backchannel_max_secs,
        tail_secs=settings.turn_fallback_secs + 0.1 if turn_model is not None else 0.0,
    )
    transport_out = CallOutput(playback, recorder, params)
    llm = services.llm
    llm.register_function("end_call", hooks.end_call)
    llm.register_function("transfer_call", hooks.transfer_call, timeout_secs=120)
    stages: list[FrameProcessor] = [transport_in]
    if services.stt is not None:
        stages.append(services.stt)
    user = aggregators.user()
    stages += [user, heard, llm]
    if services.tts is not None:
        stages.append(services.tts)
    stages += [transport_out, aggregators.assistant()]

    @user.event_handler("on_user_turn_stopped")
    async def on_caller_turn(_: Any, __: Any, message: Any) -> None:
        text = (message.content or "").strip()
        if text:
            hooks.caller_said(text)

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
    failing = {p.name: kind for kind, p in (("stt", services.stt), ("llm", llm), ("tts", services.tts)) if p}

    @worker.event_handler("on_pipeline_error")
    async def on_error(_: PipelineWorker, frame: ErrorFrame) -> None:
        processor = getattr(frame, "processor", None)
        kind = failing.get(processor.name) if processor is not None else None
        if kind is not None or frame.fatal:
            hooks.failed(kind or "pipeline", frame.error)

    return worker
