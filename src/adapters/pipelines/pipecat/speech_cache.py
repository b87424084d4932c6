"""The process's fixed phrases as call audio: greetings and apologies, synthesised once per voice
and text, so a call's start-up need not wait for them and a failing TTS can still apologise."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

import numpy as np
import soxr
import structlog

from adapters.pipelines.pcm import CALL_RATE
from adapters.pipelines.pipecat.services import OPENAI_SPEECH_RATE, SharedHttp
from adapters.pipelines.pipecat.settings import ServiceBlock

log = structlog.get_logger(__name__)


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
    """16-bit `samples` at `rate` as the call's PCM (resampled when the rates differ)."""
    if rate == CALL_RATE:
        return samples.astype(np.int16).tobytes()
    resampled = soxr.resample(samples.astype(np.float32), rate, CALL_RATE, quality="HQ")
    return bytes(np.clip(resampled, -32768, 32767).astype(np.int16).tobytes())
