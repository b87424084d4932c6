"""The services each definition builds: Pipecat's own service classes (constructed only: no
network)."""

from __future__ import annotations

import os

import pytest
from pipecat.services.openai.llm import OpenAILLMService

from adapters.pipelines.pipecat.services import SharedHttp, build_services
from adapters.pipelines.pipecat.settings import PipecatSettings
from domain.agents import AgentDefinition


@pytest.mark.parametrize(
    ("llm", "stt", "tts", "names"),
    [
        ("openai", "openai", "openai", ("_OpenAILLMService", "_OpenAISTTService", "_OpenAITTSService")),
        (
            "groq",
            "deepgram",
            "cartesia",
            ("_OpenAILLMService", "DeepgramSTTService", "CartesiaTTSService"),
        ),
        (
            "openai",
            "openai",
            "elevenlabs",
            ("_OpenAILLMService", "_OpenAISTTService", "ElevenLabsTTSService"),
        ),
    ],
)
def test_each_provider_builds_its_pipecat_service(
    llm: str, stt: str, tts: str, names: tuple[str, ...]
) -> None:
    os.environ.setdefault("AGENT_STREAM_UNIT_KEY", "k-unit")
    block = {"model": "m", "voice": "v", "api_key_env": "AGENT_STREAM_UNIT_KEY"}
    definition = AgentDefinition.from_dict(
        {
            "engine": "pipecat",
            "llm": {**block, "provider": llm},
            "stt": {**block, "provider": stt},
            "tts": {**block, "provider": tts},
        }
    )
    services = build_services(PipecatSettings.from_definition(definition, {}), 8000, SharedHttp())
    built = tuple(type(s).__name__ for s in (services.llm, services.stt, services.tts))
    assert built == names
    assert isinstance(services.llm, OpenAILLMService)


def test_a_realtime_block_builds_a_speech_to_speech_service() -> None:
    os.environ.setdefault("AGENT_STREAM_UNIT_KEY", "k-unit")
    definition = AgentDefinition.from_dict(
        {
            "engine": "pipecat",
            "realtime": {
                "provider": "openai",
                "model": "gpt-realtime",
                "voice": "marin",
                "api_key_env": "AGENT_STREAM_UNIT_KEY",
            },
        }
    )
    services = build_services(PipecatSettings.from_definition(definition, {}), 8000, SharedHttp())
    assert services.realtime
    assert type(services.llm).__name__ == "OpenAIRealtimeLLMService"
    assert (services.stt, services.tts) == (None, None)
    session = services.llm.settings.session_properties
    assert session.audio.output.voice == "marin"
    assert session.instructions.startswith("You are a helpful voice agent")
