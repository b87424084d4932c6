"""The agent's services, built from its settings: Pipecat's own service classes.

| kind | providers |
| --- | --- |
| `llm` | `openai` (any OpenAI-compatible server through `base_url`), `groq` |
| `stt` | `openai` (HTTP transcriptions of each utterance), `deepgram` (streaming) |
| `tts` | `openai` (HTTP speech, PCM), `cartesia`, `elevenlabs` (streaming) |
| `realtime` | `openai` (a speech-to-speech model instead of the three) |

The OpenAI-compatible services are Pipecat's, with their requests sent by `openai_http` instead
of the `openai` SDK (whose per-request CPU was a fifth of the server's at load), each retried
once (time-outs, connection errors, 408/409/429 and 5xx) within a bounded time; the streaming
providers reconnect on their own. Any `voice` is passed through: local servers have their own.

The OpenAI-compatible services of every call share one HTTP connection pool (`SharedHttp`): each
client of its own would load the system's CA certificates again (about 20 ms of CPU per service,
three per call) and open new connections. Every provider's module is imported with this one, when
the engine loads, never on the event loop during a call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import aiohttp
from openai import AsyncOpenAI, DefaultAsyncHttpxClient
from openai.types.audio import Transcription
from pipecat.frames.frames import ErrorFrame, Frame, TTSAudioRawFrame
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.services.cartesia.tts import CartesiaTTSService
from pipecat.services.deepgram.stt import DeepgramSTTService
from pipecat.services.elevenlabs.tts import ElevenLabsTTSService
from pipecat.services.llm_service import LLMService
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.services.openai.realtime import events
from pipecat.services.openai.realtime.llm import OpenAIRealtimeLLMService
from pipecat.services.openai.stt import OpenAISTTService
from pipecat.services.openai.tts import OpenAITTSService
from pipecat.services.tts_service import TTSService
from pipecat.utils.text.simple_text_aggregator import SimpleTextAggregator
from pipecat.utils.types import assert_given

from adapters.pipelines.pipecat.clauses import FirstClauseAggregator
from adapters.pipelines.pipecat.openai_http import (
    REQUEST_TIMEOUT,
    OpenAIHttp,
    ServiceRequestError,
    chat_chunks,
    close_quietly,
    new_session,
    pieces,
    request_body,
)
from adapters.pipelines.pipecat.settings import PipecatSettings, ServiceBlock

OPENAI_SPEECH_RATE = 24000


class SharedHttp:
    """The process's connection pools: an aiohttp session for every call's requests to
    OpenAI-compatible servers, and an httpx2 client for the `openai` SDK clients Pipecat's services
    construct (they send nothing, but each would otherwise build a pool of its own, loading the
    system's CA certificates: ~20 ms of CPU per service)."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None  # made in the event loop, on first use
        self._sdk: Any = DefaultAsyncHttpxClient(timeout=REQUEST_TIMEOUT)

    def client(self) -> Any:
        """For the SDK clients' constructors."""
        return self._sdk

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = new_session()
        return self._session

    def endpoint(self, block: ServiceBlock) -> OpenAIHttp:
        if block.base_url is None:  # the settings give every OpenAI-compatible provider one
            raise ValueError(f"{block.kind}.{block.provider} is not an OpenAI-compatible service")
        return OpenAIHttp(self.session, block.base_url, block.api_key.reveal())

    async def aclose(self) -> None:
        await close_quietly(self._session)
        await self._sdk.aclose()


@dataclass(slots=True)
class Services:
    llm: LLMService[Any]
    stt: FrameProcessor | None = None
    tts: FrameProcessor | None = None
    realtime: bool = False


def build_services(settings: PipecatSettings, sample_rate: int, http: SharedHttp) -> Services:
    """The services of one call; `sample_rate` is the call's (the STT hears it, the TTS speaks it)."""
    blocks = settings.blocks
    if isinstance(blocks, ServiceBlock):
        return Services(llm=_realtime(blocks, settings.system_prompt), realtime=True)
    return Services(
        llm=_llm(blocks.llm, settings.system_prompt, http),
        stt=_stt(blocks.stt, sample_rate, http, passthrough=settings.turn_detection == "smart_turn"),
        tts=_tts(blocks.tts, sample_rate, http),
    )


def _settings(service: Any, **fields: Any) -> Any:
    """The service's own `Settings`, with only the fields the block sets."""
    return service.Settings(**{k: v for k, v in fields.items() if v is not None})


class _OpenAILLMService(OpenAILLMService):
    """Pipecat's OpenAI LLM; the streamed completion goes through `openai_http`."""

    def __init__(self, *, http: SharedHttp, endpoint: OpenAIHttp, **kwargs: Any) -> None:
        self._http = http
        self._endpoint = endpoint
        super().__init__(**kwargs)

    def create_client(self, api_key: Any = None, base_url: Any = None, *_: Any, **__: Any) -> AsyncOpenAI:
        return AsyncOpenAI(api_key=api_key, base_url=base_url, http_client=self._http.client())

    async def get_chat_completions(self, context: LLMContext) -> Any:
        settings: Any = self.settings
        params = await self.get_llm_adapter().get_llm_invocation_params(
            context,
            system_instruction=assert_given(settings.system_instruction),
            convert_developer_to_user=not self.supports_developer_role,
        )
        return chat_chunks(self._endpoint, self.build_chat_completion_params(params))


class _OpenAISTTService(OpenAISTTService):
    """Pipecat's OpenAI STT; each utterance's upload goes through `openai_http`."""

    def __init__(self, *, endpoint: OpenAIHttp, **kwargs: Any) -> None:
        self._endpoint = endpoint
        super().__init__(**kwargs)

    # Pipecat's hook for a subclass to send the upload (`BaseWhisperSTTService._transcribe`, a
    # private name: written against pipecat-ai 1.14.0, the only private of Pipecat's used here)
    async def _transcribe(self, audio: bytes) -> Transcription:
        settings: Any = self.settings
        fields = {
            "model": settings.model,
            "language": settings.language,
            "prompt": settings.prompt,
            "temperature": settings.temperature,
        }
        body = await self._endpoint.post(
            "stt",
            "/audio/transcriptions",
            form={k: str(v) for k, v in request_body(fields).items()},
            file=("audio.wav", audio, "audio/wav"),
        )
        return Transcription.model_validate_json(body)


class _OpenAITTSService(OpenAITTSService):
    """Pipecat's OpenAI TTS; the speech streams through `openai_http`, in any voice the server has.

    Pipecat asks for one text at a time and hands over the next only when `run_tts` returns. Here
    `run_tts` returns once the text's first audio is out, and the rest is appended as it arrives
    (`_rest`): the next text's request starts while this one still streams, so its first audio is
    there before this one has played out (a short first clause, clauses.py, would otherwise leave a
    hole before the next sentence). Frames Pipecat appends to the audio context meanwhile (this
    text's `TTSTextFrame`, the next text's announcement, the turn's end) wait behind the audio
    still arriving, so the context's order stays Pipecat's.
    """

    def __init__(self, *, endpoint: OpenAIHttp, **kwargs: Any) -> None:
        self._endpoint = endpoint
        self._rest: asyncio.Task[None] | None = None  # appends the previous text's remaining audio
        self._rest_context: str | None = None  # ... to this audio context
        self._behind: list[tuple[str | None, Any]] = []  # appended while `_rest` runs: after it
        super().__init__(**kwargs)

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame, None]:
        audio: asyncio.Queue[Frame | None] = asyncio.Queue()
        fetch = asyncio.create_task(self._fetch(text, context_id, audio))  # the request goes now
        handed_over = False
        try:
            if self._rest is not None:
                await asyncio.wait({self._rest})  # the previous text's audio comes first
            first = await audio.get()
            if first is None:
                return
            yield first
            self._rest = asyncio.create_task(self._append_rest(audio, context_id, fetch))
            self._rest_context = context_id
            handed_over = True
        finally:
            if not handed_over:
                fetch.cancel()

    async def _fetch(self, text: str, context_id: str, audio: asyncio.Queue[Frame | None]) -> None:
        settings: Any = self.settings
        body = request_body(
            {
                "input": text,
                "model": settings.model,
                "voice": settings.voice,
                "response_format": "pcm",
                "instructions": settings.instructions or None,
                "speed": settings.speed or None,
            }
        )
        try:
            async with self._endpoint.stream("tts", "/audio/speech", json=body) as response:
                await self.start_tts_usage_metrics(text)
                async for chunk in pieces(response, self.chunk_size):
                    await self.stop_ttfb_metrics()
                    audio.put_nowait(TTSAudioRawFrame(chunk, self.sample_rate, 1, context_id=context_id))
        except (ServiceRequestError, aiohttp.ClientError, TimeoutError) as exc:
            audio.put_nowait(ErrorFrame(error=f"Error getting audio: {exc}"))
        finally:
            audio.put_nowait(None)

    async def _append_rest(
        self,
        audio: asyncio.Queue[Frame | None] | None,
        context_id: str | None,
        fetch: asyncio.Task[None] | None,
    ) -> None:
        """The text's remaining audio (none after an interruption), then what waited behind it."""
        try:
            while audio is not None and (frame := await audio.get()) is not None:
                await super().append_to_audio_context(context_id, frame)
            while self._behind:  # what waited for this audio, in order
                waiting_context, waiting = self._behind.pop(0)
                await super().append_to_audio_context(waiting_context, waiting)
        finally:
            if fetch is not None:
                fetch.cancel()
            if self._rest is asyncio.current_task():  # no await since the last check: in order
                self._rest = None

    async def append_to_audio_context(self, context_id: str | None, frame: Any) -> None:
        if self._rest is not None and asyncio.current_task() is not self._rest:
            self._behind.append((context_id, frame))
            return
        await super().append_to_audio_context(context_id, frame)

    async def on_turn_context_completed(self) -> None:
        if self._rest is not None:  # the turn's audio all appended before its context is closed
            await asyncio.wait({self._rest})
        await super().on_turn_context_completed()  # type: ignore[no-untyped-call]

    async def on_audio_context_interrupted(self, context_id: str) -> None:
        self._drop_rest(context_id)
        await super().on_audio_context_interrupted(context_id)

    async def cleanup(self) -> None:
        self._drop_rest(None)
        await super().cleanup()  # type: ignore[no-untyped-call]

    def _drop_rest(self, context_id: str | None) -> None:
        """An interrupted context (`None`: every one, at the end): its audio still arriving, and
        what waited for it, go; what waited for another context is still appended, in order."""
        self._behind = [] if context_id is None else [item for item in self._behind if item[0] != context_id]
        if self._rest is not None and context_id in (None, self._rest_context):
            self._rest.cancel()
            self._rest = asyncio.create_task(self._append_rest(None, None, None)) if self._behind else None


def _llm(block: ServiceBlock, system_prompt: str, http: SharedHttp) -> LLMService[Any]:
    return _OpenAILLMService(
        http=http,
        endpoint=http.endpoint(block),
        api_key=block.api_key.reveal(),
        base_url=block.base_url,
        settings=_settings(
            OpenAILLMService,
            model=block.model,
            system_instruction=system_prompt,
            temperature=block.options.get("temperature"),
        ),
    )


def _stt(block: ServiceBlock, sample_rate: int, http: SharedHttp, passthrough: bool) -> FrameProcessor:
    """The caller's audio ends here (nothing after the STT needs it), unless an end-of-turn model
    (`passthrough`) after it hears the audio too."""
    key = block.api_key.reveal()
    fields = {"model": block.model, "language": block.language}
    if block.provider == "deepgram":
        return DeepgramSTTService(
            api_key=key,
            sample_rate=sample_rate,
            audio_passthrough=passthrough,
            settings=_settings(DeepgramSTTService, **fields),
        )
    return _OpenAISTTService(
        endpoint=http.endpoint(block),
        api_key=key,
        base_url=block.base_url,
        http_client=http.client(),
        audio_passthrough=passthrough,
        settings=_settings(OpenAISTTService, **fields),
    )


def _tts(block: ServiceBlock, sample_rate: int, http: SharedHttp) -> FrameProcessor:
    key = block.api_key.reveal()
    fields = {"model": block.model, "voice": block.voice, "language": block.language}
    tts: TTSService
    if block.provider == "cartesia":
        tts = CartesiaTTSService(
            api_key=key, sample_rate=sample_rate, settings=_settings(CartesiaTTSService, **fields)
        )
    elif block.provider == "elevenlabs":
        tts = ElevenLabsTTSService(
            api_key=key, sample_rate=sample_rate, settings=_settings(ElevenLabsTTSService, **fields)
        )
    else:
        tts = _OpenAITTSService(
            endpoint=http.endpoint(block),
            api_key=key,
            base_url=block.base_url,
            http_client=http.client(),
            sample_rate=OPENAI_SPEECH_RATE,  # what the API sends; the transport resamples to the call's rate
            settings=_settings(OpenAITTSService, model=block.model, voice=block.voice),
        )
    return _first_clause_early(tts)


def _first_clause_early(tts: TTSService) -> TTSService:
    """A TTS that speaks sentence by sentence gets each reply's first clause at once (clauses.py).
    pipecat-ai 1.14.0: the aggregator is built in `TTSService.__init__`, with no parameter for it."""
    current = tts._text_aggregator
    if type(current) is SimpleTextAggregator and not tts._is_streaming_tokens:
        tts._text_aggregator = FirstClauseAggregator(language=current.language)
    return tts


def _realtime(block: ServiceBlock, system_prompt: str) -> LLMService[Any]:
    kwargs: dict[str, Any] = {"api_key": block.api_key.reveal()}
    if block.base_url:
        kwargs["base_url"] = block.base_url
    audio = events.AudioConfiguration(output=events.AudioOutput(voice=block.voice)) if block.voice else None
    session = events.SessionProperties(instructions=system_prompt, audio=audio)
    return OpenAIRealtimeLLMService(
        **kwargs,
        settings=_settings(OpenAIRealtimeLLMService, model=block.model, session_properties=session),
    )
