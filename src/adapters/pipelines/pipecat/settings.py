"""The `pipecat` engine's settings, read from the agent's definition (interfaces.md).

Pure Python (no Pipecat import), so a definition can be checked and its key variables resolved
before any service is built. A service block names the environment variable that holds its key,
never the key; the key is read here, at call time, and lives only in the `ServiceBlock`'s
`SecretStr`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.agents import (
    DEFAULT_BACKCHANNEL_MAX_SECS,
    DEFAULT_TURN_FALLBACK_SECS,
    AgentDefinition,
    InvalidDefinitionError,
    check_turn_settings,
)
from domain.close_policy import AgentMisconfiguredError
from domain.telephony import SecretStr

OPENAI_BASE_URL = "https://api.openai.com/v1"

# provider -> default base_url (None: the provider's SDK knows its own endpoint)
LLM_PROVIDERS: dict[str, str | None] = {
    "openai": OPENAI_BASE_URL,
    "groq": "https://api.groq.com/openai/v1",  # OpenAI-compatible chat completions
}
STT_PROVIDERS: dict[str, str | None] = {"openai": OPENAI_BASE_URL, "deepgram": None}
TTS_PROVIDERS: dict[str, str | None] = {"openai": OPENAI_BASE_URL, "cartesia": None, "elevenlabs": None}
REALTIME_PROVIDERS: dict[str, str | None] = {"openai": None}

DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful voice agent answering a phone call. Keep answers short and spoken-style: "
    "no lists, no markdown. When the caller is done, say goodbye and call end_call."
)
DEFAULT_APOLOGY = "I'm sorry, I'm having technical trouble. Please call again later. Goodbye."

_TEMPLATE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def render_template(text: str, variables: Mapping[str, Any]) -> str:
    """`{{name}}` -> the variable's value; an unknown or empty name becomes the empty string."""

    def value(match: re.Match[str]) -> str:
        found = variables.get(match.group(1))
        return "" if found is None else str(found)

    return _TEMPLATE.sub(value, text)


@dataclass(frozen=True, slots=True)
class ServiceBlock:
    """One service of the agent: `llm`, `stt`, `tts` or `realtime`."""

    kind: str
    provider: str
    model: str | None
    base_url: str | None
    api_key_env: str
    api_key: SecretStr = field(repr=False, compare=False)
    voice: str | None = None
    language: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def cache_key(self) -> tuple[str, str | None, str | None, str | None, str | None]:
        """What makes two blocks speak the same audio (the key never takes part)."""
        return (self.provider, self.base_url, self.model, self.voice, self.language)


@dataclass(frozen=True, slots=True)
class Cascade:
    """The three services of an agent that has no speech-to-speech model."""

    llm: ServiceBlock
    stt: ServiceBlock
    tts: ServiceBlock


@dataclass(frozen=True, slots=True)
class PipecatSettings:
    system_prompt: str
    greeting: str | None
    apology: str
    transfer_destinations: tuple[str, ...]
    blocks: Cascade | ServiceBlock  # llm, stt and tts; or one `realtime` (speech-to-speech) block
    max_call_seconds: int = 600
    vad_stop_secs: float = 0.2
    turn_stop_secs: float = 0.4
    turn_detection: str = "silence"  # or "smart_turn": the model asked at each pause
    turn_fallback_secs: float = DEFAULT_TURN_FALLBACK_SECS
    backchannel_max_secs: float = DEFAULT_BACKCHANNEL_MAX_SECS

    @classmethod
    def from_definition(
        cls,
        definition: AgentDefinition,
        variables: Mapping[str, Any],
        environ: Mapping[str, str] | None = None,
    ) -> PipecatSettings:
        """Read and check the definition; raises `AgentMisconfiguredError` (close 1011) naming what
        is wrong (for a missing key: the variable's name, never a value)."""
        env = os.environ if environ is None else environ
        raw = definition.settings
        prompt = _optional_str(raw, "system_prompt") or DEFAULT_SYSTEM_PROMPT
        apology = _optional_str(raw, "apology") or DEFAULT_APOLOGY
        destinations = raw.get("transfer_destinations", [])
        if not isinstance(destinations, list) or not all(isinstance(d, str) for d in destinations):
            raise _misconfigured("transfer_destinations must be a list of strings")
        if definition.transfer_destination and definition.transfer_destination not in destinations:
            destinations = [*destinations, definition.transfer_destination]
        blocks: Cascade | ServiceBlock
        if "realtime" in raw:
            blocks = _block(raw, "realtime", REALTIME_PROVIDERS, env)
        else:
            blocks = Cascade(
                llm=_block(raw, "llm", LLM_PROVIDERS, env),
                stt=_block(raw, "stt", STT_PROVIDERS, env),
                tts=_block(raw, "tts", TTS_PROVIDERS, env),
            )
        vad = raw.get("vad", {})
        if not isinstance(vad, dict):
            raise _misconfigured("vad must be an object")
        try:  # checked when the agent was saved; read again for definitions stored before
            check_turn_settings(raw)
        except InvalidDefinitionError as exc:
            raise _misconfigured(str(exc)) from None
        greeting = definition.greeting
        return cls(
            system_prompt=render_template(prompt, variables),
            greeting=render_template(greeting, variables) if greeting else None,
            apology=apology,
            transfer_destinations=tuple(destinations),
            max_call_seconds=definition.max_call_seconds,
            vad_stop_secs=_number(vad, "stop_secs", 0.2),
            turn_stop_secs=_number(vad, "turn_stop_secs", 0.4),
            turn_detection=raw.get("turn_detection", "silence"),
            turn_fallback_secs=float(raw.get("turn_fallback_secs", DEFAULT_TURN_FALLBACK_SECS)),
            backchannel_max_secs=float(raw.get("backchannel_max_secs", DEFAULT_BACKCHANNEL_MAX_SECS)),
            blocks=blocks,
        )

    @property
    def llm(self) -> ServiceBlock | None:
        return self.blocks.llm if isinstance(self.blocks, Cascade) else None

    @property
    def stt(self) -> ServiceBlock | None:
        return self.blocks.stt if isinstance(self.blocks, Cascade) else None

    @property
    def tts(self) -> ServiceBlock | None:
        return self.blocks.tts if isinstance(self.blocks, Cascade) else None

    @property
    def realtime(self) -> ServiceBlock | None:
        return self.blocks if isinstance(self.blocks, ServiceBlock) else None

    def key_variables(self) -> list[str]:
        return [b.api_key_env for b in (self.llm, self.stt, self.tts, self.realtime) if b is not None]


def _block(
    raw: Mapping[str, Any], kind: str, providers: Mapping[str, str | None], env: Mapping[str, str]
) -> ServiceBlock:
    block = raw.get(kind)
    if not isinstance(block, dict):
        raise _misconfigured(f"{kind} block missing")
    provider = block.get("provider", "openai")
    if provider not in providers:
        raise _misconfigured(f"{kind}.provider {provider!r} not supported")
    key_env = block.get("api_key_env")
    if not isinstance(key_env, str) or not key_env:
        raise _misconfigured(f"{kind}.api_key_env missing")
    if "api_key" in block:  # a key in the definition would be stored and shown: refuse it
        raise _misconfigured(f"{kind}.api_key not allowed; name a variable in api_key_env")
    key = env.get(key_env)
    if not key:
        raise AgentMisconfiguredError(f"Missing API key variable: {key_env}"[:123], detail=kind)
    base_url = block.get("base_url") or providers[provider]
    known = {"provider", "model", "base_url", "api_key_env", "voice", "language"}
    return ServiceBlock(
        kind=kind,
        provider=provider,
        model=_optional_str(block, "model"),
        base_url=str(base_url).rstrip("/") if base_url else None,
        api_key_env=key_env,
        api_key=SecretStr(key),
        voice=_optional_str(block, "voice"),
        language=_optional_str(block, "language"),
        options={k: v for k, v in block.items() if k not in known},
    )


def _optional_str(raw: Mapping[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise _misconfigured(f"{key} must be a string")
    return value


def _number(raw: Mapping[str, Any], key: str, default: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 10:
        raise _misconfigured(f"vad.{key} must be a number of seconds")
    return float(value)


def _misconfigured(what: str) -> AgentMisconfiguredError:
    return AgentMisconfiguredError(f"Invalid agent definition: {what}"[:123])
