"""The agent's services, built from its settings: Pipecat's own service classes.

| kind | providers |
| --- | --- |
| `llm` | `openai` (any OpenAI-compatible server through `base_url`), `groq` |
| `stt` | `openai` (HTTP transcriptions of each utterance), `deepgram` (streaming) |
| `tts` | `openai` (HTTP speech, PCM), `cartesia`, `elevenlabs` (streaming) |
| `realtime` | `openai` (a speech-to-speech model instead of the three) |

Every OpenAI-compatible request is retried once (the SDK's own retry, for time-outs, connection
errors, 429 and 5xx) within a bounded time; the streaming providers reconnect on their own.

The OpenAI-compatible services of every call share one HTTP connection pool (`SharedHttp`): each
client of its own would load the system's CA certificates again (about 20 ms of CPU per service,
three per call) and open new connections. Every provider's module is imported with this one, when
the engine loads, never on the event loop during a call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from openai import AsyncOpenAI, DefaultAsyncHttpxClient
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

from adapters.pipelines.pipecat.settings import PipecatSettings, ServiceBlock

RETRIES = 1
OPENAI_SPEECH_RATE = 24000
REQUEST_TIMEOUT = 15.0  # seconds per attempt


class SharedHttp:
    """One HTTP connection pool for every call's OpenAI-compatible services."""

    def __init__(self) -> None:
        self._client: Any = DefaultAsyncHttpxClient(timeout=REQUEST_TIMEOUT)  # binds to a loop on first use

    def client(self) -> Any:
        return self._client


@dataclass(slots=True)
class Services:
    llm: LLMService[Any]
    stt: FrameProcessor | None = None
    tts: FrameProcessor | None = None
    realtime: bool = False


def build_services(settings: PipecatSettings, sample_rate: int, http: SharedHttp) -> Services:
    """The services of one call; `sample_rate` is the call's (the STT hears it, the TTS speaks it)."""
    if settings.realtime is not None:
        return Services(llm=_realtime(settings.realtime, settings.system_prompt), realtime=True)
    assert settings.llm is not None  # noqa: S101 - PipecatSettings sets all three
    assert settings.stt is not None  # noqa: S101
    assert settings.tts is not None  # noqa: S101
    return Services(
        llm=_llm(settings.llm, settings.system_prompt, http),
        stt=_stt(settings.stt, sample_rate, http),
        tts=_tts(settings.tts, sample_rate, http),
    )


def _settings(service: Any, **fields: Any) -> Any:
    """The service's own `Settings`, with only the fields the block sets."""
    return service.Settings(**{k: v for k, v in fields.items() if v is not None})


def _retry_once(service: Any) -> Any:
    """OpenAI-SDK services: one retry, bounded time (the SDK default is two retries, 10 minutes)."""
    service._client = service._client.with_options(max_retries=RETRIES, timeout=REQUEST_TIMEOUT)
    return service


class _PooledOpenAILLMService(OpenAILLMService):
    """Pipecat's OpenAI LLM on the shared pool (its own `create_client` makes a pool per call)."""

    def __init__(self, *, http: SharedHttp, **kwargs: Any) -> None:
        self._http = http
        super().__init__(**kwargs)

    def create_client(
        self,
        api_key: Any = None,
        base_url: Any = None,
        organization: Any = None,
        project: Any = None,
        default_headers: Any = None,
        **kwargs: Any,
    ) -> AsyncOpenAI:
        return AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            organization=organization,
            project=project,
            default_headers=default_headers,
            http_client=self._http.client(),
            max_retries=RETRIES,
            timeout=REQUEST_TIMEOUT,
        )


def _llm(block: ServiceBlock, system_prompt: str, http: SharedHttp) -> LLMService[Any]:
    return _PooledOpenAILLMService(
        http=http,
        api_key=block.api_key.reveal(),
        base_url=block.base_url,
        settings=_settings(
            OpenAILLMService,
            model=block.model,
            system_instruction=system_prompt,
            temperature=block.options.get("temperature"),
        ),
    )


def _stt(block: ServiceBlock, sample_rate: int, http: SharedHttp) -> FrameProcessor:
    """The caller's audio ends here: nothing after the STT needs it."""
    key = block.api_key.reveal()
    fields = {"model": block.model, "language": block.language}
    if block.provider == "deepgram":
        return DeepgramSTTService(
            api_key=key,
            sample_rate=sample_rate,
            audio_passthrough=False,
            settings=_settings(DeepgramSTTService, **fields),
        )
    service = OpenAISTTService(
        api_key=key,
        base_url=block.base_url,
        http_client=http.client(),
        audio_passthrough=False,
        settings=_settings(OpenAISTTService, **fields),
    )
    return _retry_once(service)  # type: ignore[no-any-return]


def _tts(block: ServiceBlock, sample_rate: int, http: SharedHttp) -> FrameProcessor:
    key = block.api_key.reveal()
    fields = {"model": block.model, "voice": block.voice, "language": block.language}
    if block.provider == "cartesia":
        return CartesiaTTSService(
            api_key=key, sample_rate=sample_rate, settings=_settings(CartesiaTTSService, **fields)
        )
    if block.provider == "elevenlabs":
        return ElevenLabsTTSService(
            api_key=key, sample_rate=sample_rate, settings=_settings(ElevenLabsTTSService, **fields)
        )
    service = OpenAITTSService(
        api_key=key,
        base_url=block.base_url,
        http_client=http.client(),
        sample_rate=OPENAI_SPEECH_RATE,  # what the API sends; the transport resamples to the call's rate
        settings=_settings(OpenAITTSService, model=block.model, voice=block.voice),
    )
    return _retry_once(service)  # type: ignore[no-any-return]


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
