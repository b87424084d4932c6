"""The process's fixed phrases as call audio: greetings and apologies, synthesised once per voice
and text, so a call's start-up need not wait for them and a failing TTS can still apologise.

A phrase not cached yet is played as it streams from the TTS (`Speech`): its first bytes reach the
caller at once, never after the whole phrase has been synthesised, and the whole is cached when it
is complete.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import soxr
import structlog

from adapters.pipelines.pcm import CALL_RATE
from adapters.pipelines.pipecat.openai_http import pieces
from adapters.pipelines.pipecat.services import OPENAI_SPEECH_RATE, SharedHttp
from adapters.pipelines.pipecat.settings import ServiceBlock

log = structlog.get_logger(__name__)

PIECE_BYTES = OPENAI_SPEECH_RATE * 2 // 10  # at most 100 ms of the TTS's audio a piece


class Speech:
    """One phrase's call audio as it arrives: whole at once (from the cache), or in pieces as the
    TTS streams it. Any number of listeners each get every piece from the start; `failed` when
    the TTS failed (a listener then has what arrived before)."""

    def __init__(self, pcm: bytes | None = None) -> None:
        self._pieces: list[bytes] = [pcm] if pcm else []
        self.done = pcm is not None
        self.failed = False
        self._changed = asyncio.Event()

    def add(self, pcm: bytes) -> None:
        if pcm:
            self._pieces.append(pcm)
            self._changed.set()

    def finish(self, failed: bool = False) -> None:
        self.done, self.failed = True, failed
        self._changed.set()

    async def pieces(self) -> AsyncIterator[bytes]:
        """Every piece, from the first, as it arrives; ends when the phrase is complete (or failed)."""
        sent = 0
        while True:
            while sent < len(self._pieces):
                sent += 1
                yield self._pieces[sent - 1]
            if self.done:
                return
            self._changed.clear()
            await self._changed.wait()

    async def whole(self) -> bytes | None:
        """The whole phrase once complete; None when the TTS failed."""
        while not self.done:
            self._changed.clear()
            await self._changed.wait()
        return None if self.failed else b"".join(self._pieces)


class SpeechCache:
    """Fixed phrases (greetings, apologies) as 8 kHz PCM, synthesised once per voice and text.

    Only OpenAI-compatible speech is fetched here (one HTTP request, streamed); other providers
    speak these phrases through the pipeline like any other turn.
    """

    def __init__(self, http: SharedHttp, max_entries: int = 256) -> None:
        self._entries: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self._pending: dict[tuple[Any, ...], Speech] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._max = max_entries
        self._http = http

    def speak(self, block: ServiceBlock, text: str) -> Speech | None:
        """The phrase's audio: cached, being synthesised (by this call or another), or asked for
        now. None for a provider this cache does not fetch."""
        if block.provider != "openai" or not text:
            return None
        key = (*block.cache_key(), text)
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
            return Speech(found)
        speech = self._pending.get(key)
        if speech is None:
            speech = self._pending[key] = Speech()
            task = asyncio.create_task(self._fetch(key, block, text, speech))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return speech

    async def get(self, block: ServiceBlock, text: str) -> bytes | None:
        """The whole phrase (None when not fetched here, or when the TTS failed)."""
        speech = self.speak(block, text)
        return None if speech is None else await speech.whole()

    async def _fetch(self, key: tuple[Any, ...], block: ServiceBlock, text: str, speech: Speech) -> None:
        try:
            await self._synthesise(block, text, speech)
        except Exception as exc:  # noqa: BLE001 - the call speaks it through its pipeline instead
            log.warning("speech_cache_miss", provider=block.provider, error=type(exc).__name__)
            speech.finish(failed=True)
        except BaseException:
            speech.finish(failed=True)
            raise
        else:
            speech.finish()
            pcm = await speech.whole()
            if pcm:
                self._entries[key] = pcm
                if len(self._entries) > self._max:
                    self._entries.popitem(last=False)
        finally:
            del self._pending[key]

    async def _synthesise(self, block: ServiceBlock, text: str, speech: Speech) -> None:
        body = {"model": block.model or "gpt-4o-mini-tts", "input": text, "voice": block.voice or "alloy"}
        body["response_format"] = "pcm"
        resampler = soxr.ResampleStream(OPENAI_SPEECH_RATE, CALL_RATE, 1, dtype="float32", quality="HQ")
        endpoint = self._http.endpoint(block)
        async with endpoint.stream("tts", "/audio/speech", json=body) as response:
            async for piece in pieces(response, PIECE_BYTES):
                samples = np.frombuffer(piece[: len(piece) & ~1], dtype="<i2").astype(np.float32)
                speech.add(_pcm16(resampler.resample_chunk(samples)))
        speech.add(_pcm16(resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)))

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()


def _pcm16(samples: np.ndarray[Any, Any]) -> bytes:
    return bytes(np.clip(samples, -32768, 32767).astype("<i2").tobytes())
