"""The pipecat engine's settings: services, keys by variable name, templates."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.pipelines.pipecat.settings import (
    DEFAULT_SYSTEM_PROMPT,
    PipecatSettings,
    render_template,
)
from domain.agents import AgentDefinition, InvalidDefinitionError
from domain.close_policy import AgentMisconfiguredError, CloseCode

ENV = {"OPENAI_API_KEY": "sk-live-secret", "DG_KEY": "dg-secret"}
BLOCK = {"provider": "openai", "model": "m", "api_key_env": "OPENAI_API_KEY"}


def definition(**settings: Any) -> AgentDefinition:
    raw = {"engine": "pipecat", "llm": BLOCK, "stt": BLOCK, "tts": {**BLOCK, "voice": "alloy"}}
    raw.update(settings)
    return AgentDefinition.from_dict({k: v for k, v in raw.items() if v is not None})


def read(env: dict[str, str] | None = None, variables: dict[str, Any] | None = None, **settings: Any):
    return PipecatSettings.from_definition(
        definition(**settings), variables or {}, ENV if env is None else env
    )


def test_reads_the_three_services_with_openai_defaults() -> None:
    settings = read()
    assert settings.llm is not None
    assert settings.llm.base_url == "https://api.openai.com/v1"
    assert settings.llm.api_key.reveal() == "sk-live-secret"
    assert settings.tts is not None
    assert settings.tts.voice == "alloy"
    assert settings.realtime is None
    assert settings.system_prompt == DEFAULT_SYSTEM_PROMPT


def test_base_url_points_at_any_openai_compatible_server() -> None:
    settings = read(llm={**BLOCK, "base_url": "http://localhost:11434/v1/"})
    assert settings.llm is not None
    assert settings.llm.base_url == "http://localhost:11434/v1"


def test_a_missing_key_variable_is_named_never_its_value() -> None:
    with pytest.raises(AgentMisconfiguredError) as refused:
        read(env={"OPENAI_API_KEY": "sk-live-secret"}, stt={"provider": "deepgram", "api_key_env": "DG_KEY"})
    assert refused.value.close.code == CloseCode.INTERNAL_ERROR
    assert refused.value.close.reason == "Missing API key variable: DG_KEY"


def test_an_empty_key_variable_counts_as_missing() -> None:
    with pytest.raises(AgentMisconfiguredError, match="OPENAI_API_KEY"):
        read(env={"OPENAI_API_KEY": ""})


def test_a_key_in_the_definition_is_refused() -> None:
    with pytest.raises(AgentMisconfiguredError, match=r"llm\.api_key not allowed"):
        read(llm={**BLOCK, "api_key": "sk-in-the-definition"})


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ({"llm": {**BLOCK, "provider": "nonesuch"}}, "llm.provider 'nonesuch' not supported"),
        ({"stt": None}, "stt block missing"),
        ({"tts": {"provider": "openai"}}, "tts.api_key_env missing"),
        ({"transfer_destinations": "+1555"}, "transfer_destinations must be a list"),
        ({"system_prompt": 42}, "system_prompt must be a string"),
        ({"vad": {"stop_secs": 0}}, "vad.stop_secs must be a number"),
    ],
)
def test_an_invalid_definition_is_refused_with_what_is_wrong(settings: dict[str, Any], reason: str) -> None:
    with pytest.raises(AgentMisconfiguredError) as refused:
        read(**settings)
    assert reason in refused.value.close.reason


def test_other_providers_are_accepted() -> None:
    settings = read(
        llm={"provider": "groq", "model": "llama", "api_key_env": "OPENAI_API_KEY"},
        stt={"provider": "deepgram", "model": "nova-3", "api_key_env": "DG_KEY"},
        tts={"provider": "cartesia", "voice": "v", "api_key_env": "DG_KEY"},
    )
    assert settings.llm is not None
    assert settings.llm.base_url == "https://api.groq.com/openai/v1"
    assert settings.stt is not None
    assert settings.stt.base_url is None


def test_a_realtime_block_replaces_the_three() -> None:
    settings = read(realtime={"provider": "openai", "model": "gpt-realtime", "api_key_env": "OPENAI_API_KEY"})
    assert settings.realtime is not None
    assert (settings.llm, settings.stt, settings.tts) == (None, None, None)


def test_prompt_and_greeting_get_the_runs_variables() -> None:
    settings = read(
        variables={"company": "Acme", "caller_number": "+15555550100"},
        system_prompt="Front desk of {{company}}; caller {{ caller_number }}; {{unknown}}.",
        greeting="Welcome to {{company}}!",
    )
    assert settings.system_prompt == "Front desk of Acme; caller +15555550100; ."
    assert settings.greeting == "Welcome to Acme!"


def test_the_single_transfer_destination_is_allowed_too() -> None:
    settings = read(transfer_destinations=["sip:desk@example.com"], transfer_destination="+15555550123")
    assert settings.transfer_destinations == ("sip:desk@example.com", "+15555550123")


def test_keys_never_print() -> None:
    settings = read()
    assert "sk-live-secret" not in repr(settings)
    assert "sk-live-secret" not in str(settings.llm)


def test_render_template_leaves_other_braces_alone() -> None:
    assert render_template("{a} {{ b }} {{c", {"b": 2}) == "{a} 2 {{c"


def test_turn_settings_default_to_silence() -> None:
    settings = read()
    assert (settings.turn_detection, settings.turn_fallback_secs, settings.backchannel_max_secs) == (
        "silence",
        1.5,
        0.3,
    )
    smart = read(turn_detection="smart_turn", turn_fallback_secs=2, backchannel_max_secs=0)
    assert (smart.turn_detection, smart.turn_fallback_secs, smart.backchannel_max_secs) == (
        "smart_turn",
        2.0,
        0.0,
    )


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"turn_detection": "model"}, "turn_detection"),
        ({"turn_fallback_secs": 0}, "turn_fallback_secs"),
        ({"backchannel_max_secs": 9}, "backchannel_max_secs"),
    ],
)
def test_bad_turn_settings_are_refused_naming_the_key(settings: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidDefinitionError) as refused:  # when the agent is saved: a 422
        definition(**settings)
    assert refused.value.field == field
    stored = AgentDefinition(engine="pipecat", settings={**definition().settings, **settings})
    with pytest.raises(AgentMisconfiguredError) as at_call_time:  # stored before the check: 1011
        PipecatSettings.from_definition(stored, {}, ENV)
    assert f"Invalid agent definition: {field}:" in at_call_time.value.close.reason
