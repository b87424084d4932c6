"""The agent's services, built from its settings: Pipecat's own service classes.

| kind | providers |
| --- | --- |
| `llm` | `openai` (any OpenAI-compatible server through `base_url`), `groq` |
| `stt` | `openai` (HTTP transcriptions of each utterance), `deepgram` (streaming) |
| `tts` | `openai` (HTTP speech, PCM), `cartesia`, `elevenlabs` (streaming) |
| `realtime` | `openai` (a speech-to-speech model instead of the three) |

Every OpenAI-compatible request is retried once (the SDK's own retry, for time-outs, connection
errors, 429 and 5xx) within a bounded time; the streaming providers reconnect on their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.services.llm_service import LLMService

from adapters.pipelines.pipecat.settings import PipecatSettings, ServiceBlock

RETRIES = 1
OPENAI_SPEECH_RATE = 24000
REQUEST_TIMEOUT = httpx.Timeout(15.0, connect=3.0)


@dataclass(slots=True)
class Services:
    llm: LLMService[Any]
    stt: FrameProcessor | None = None
    tts: FrameProcessor | None = None
    realtime: bool = False


def build_services(settings: PipecatSettings, sample_rate: int) -> Services:
    """The services of one call; `sample_rate` is the call's (the STT hears it, the TTS speaks it)."""
    if settings.realtime is not None:
        return Services(llm=_realtime(settings.realtime, settings.system_prompt), realtime=True)
    assert settings.llm is not None  # noqa: S101 - PipecatSettings sets all three
    assert settings.stt is not None  # noqa: S101
    assert settings.tts is not None  # noqa: S101
    return Services(
        llm=_llm(settings.llm, settings.system_prompt),
        stt=_stt(settings.stt, sample_rate),
        tts=_tts(settings.tts, sample_rate),
    )


def _settings(service: Any, block: ServiceBlock, **fields: Any) -> Any:
    """The service's own `Settings`, with only the fields the block sets."""
    given = {k: v for k, v in fields.items() if v is not None}
    return service.Settings(**given)


def _retry_once(service: Any) -> Any:
    """OpenAI-SDK services: one retry, bounded time (the SDK default is two retries, 10 minutes)."""
    service._client = service._client.with_options(max_retries=RETRIES, timeout=REQUEST_TIMEOUT)
    return service


def _llm(block: ServiceBlock, system_prompt: str) -> LLMService[Any]:
    from pipecat.services.openai.llm import OpenAILLMService

    key = block.api_key.reveal()
    service = OpenAILLMService(
        api_key=key,
        base_url=block.base_url,
        settings=_settings(
            OpenAILLMService,
            block,
            model=block.model,
            system_instruction=system_prompt,
            temperature=block.options.get("temperature"),
        ),
    )
    return _retry_once(service)  # type: ignore[no-any-return]


def _stt(block: ServiceBlock, sample_rate: int) -> FrameProcessor:
    key = block.api_key.reveal()
    if block.provider == "deepgram":
        from pipecat.services.deepgram.stt import DeepgramSTTService

        return DeepgramSTTService(
            api_key=key,
            sample_rate=sample_rate,
            settings=_settings(DeepgramSTTService, block, model=block.model, language=block.language),
        )
    from pipecat.services.openai.stt import OpenAISTTService

    service = OpenAISTTService(
        api_key=key,
        base_url=block.base_url,
        settings=_settings(OpenAISTTService, block, model=block.model, language=block.language),
    )
    return _retry_once(service)  # type: ignore[no-any-return]


def _tts(block: ServiceBlock, sample_rate: int) -> FrameProcessor:
    key = block.api_key.reveal()
    fields = {"model": block.model, "voice": block.voice, "language": block.language}
    if block.provider == "cartesia":
        from pipecat.services.cartesia.tts import CartesiaTTSService

        return CartesiaTTSService(
            api_key=key, sample_rate=sample_rate, settings=_settings(CartesiaTTSService, block, **fields)
        )
    if block.provider == "elevenlabs":
        from pipecat.services.elevenlabs.tts import ElevenLabsTTSService

        return ElevenLabsTTSService(
            api_key=key, sample_rate=sample_rate, settings=_settings(ElevenLabsTTSService, block, **fields)
        )
    from pipecat.services.openai.tts import OpenAITTSService

    service = OpenAITTSService(
        api_key=key,
        base_url=block.base_url,
        sample_rate=OPENAI_SPEECH_RATE,  # what the API sends; the transport resamples to the call's rate
        settings=_settings(OpenAITTSService, block, model=block.model, voice=block.voice),
    )
    return _retry_once(service)  # type: ignore[no-any-return]


def _realtime(block: ServiceBlock, system_prompt: str) -> LLMService[Any]:
    from pipecat.services.openai.realtime import events
    from pipecat.services.openai.realtime.llm import OpenAIRealtimeLLMService

    kwargs: dict[str, Any] = {"api_key": block.api_key.reveal()}
    if block.base_url:
        kwargs["base_url"] = block.base_url
    audio = events.AudioConfiguration(output=events.AudioOutput(voice=block.voice)) if block.voice else None
    session = events.SessionProperties(instructions=system_prompt, audio=audio)
    return OpenAIRealtimeLLMService(
        **kwargs,
        settings=_settings(OpenAIRealtimeLLMService, block, model=block.model, session_properties=session),
    )
