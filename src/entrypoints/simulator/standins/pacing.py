"""How fast the OpenAI stand-in answers: instantly (the default), or paced like real services.

Real services stream: a transcription comes back after ~200 ms, an LLM's first token after ~300 ms
and then ~40 tokens a second, a TTS's first audio after ~150 ms and then faster than real time, in
pieces. `PACED` is that; tests and benchmarks set it with `OpenAIStandIn(pacing=PACED)` (openai_api.py) or
`standin.pace(PACED)`, a process with `--paced`.

`Pacing` only says how long things take; `speech_pieces` sends a speech answer at that pace.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from entrypoints.simulator.standins.server import Send

SAMPLE_RATE = 24_000  # OpenAI's `pcm` speech
INSTANT_FIRST_PIECE = SAMPLE_RATE * 2 // 10  # unpaced: 100 ms of speech goes out at once
INSTANT_PIECE = SAMPLE_RATE * 2  # then the rest, a second at a time


@dataclass(frozen=True, slots=True)
class Pacing:
    """Each service's own time. Zeros (and `None`) answer as fast as the stand-in can."""

    stt_secs: float = 0.0  # before a transcription's answer
    llm_first_token_secs: float = 0.0  # before a chat completion's first chunk
    llm_tokens_per_sec: float | None = None  # then one streamed chunk (a word) per 1/rate s
    tts_first_byte_secs: float = 0.0  # before a speech answer's first audio
    tts_speed: float | None = None  # then audio at this multiple of real time
    tts_piece_secs: float = 0.1  # in pieces of this many seconds (when `tts_speed` is set)

    @property
    def latencies(self) -> dict[Any, float]:  # keyed by the stand-in's `Operation`
        """The wait before each operation's answer starts."""
        return {
            "chat": self.llm_first_token_secs,
            "transcriptions": self.stt_secs,
            "speech": self.tts_first_byte_secs,
        }

    @property
    def chunk_interval(self) -> float:
        """Seconds between two streamed chat chunks."""
        return 1.0 / self.llm_tokens_per_sec if self.llm_tokens_per_sec else 0.0


INSTANT = Pacing()
# STT 200 ms; LLM first token 300 ms, then 40 tokens/s; TTS first byte 150 ms, then 2x real time
# in 100 ms pieces (issue 13).
PACED = Pacing(
    stt_secs=0.2,
    llm_first_token_secs=0.3,
    llm_tokens_per_sec=40.0,
    tts_first_byte_secs=0.15,
    tts_speed=2.0,
    tts_piece_secs=0.1,
)


async def speech_pieces(send: Send, pcm: bytes, pacing: Pacing) -> None:
    """The body of a speech answer (its headers sent): paced pieces, or as fast as possible."""

    async def piece(at: int, size: int) -> None:
        await send({"type": "http.response.body", "body": pcm[at : at + size], "more_body": True})

    if pacing.tts_speed is None:
        await piece(0, INSTANT_FIRST_PIECE)
        for at in range(INSTANT_FIRST_PIECE, len(pcm), INSTANT_PIECE):
            await asyncio.sleep(0)
            await piece(at, INSTANT_PIECE)
    else:
        size = max(2, round(pacing.tts_piece_secs * SAMPLE_RATE) * 2)
        started = time.monotonic()
        for at in range(0, len(pcm), size):
            # the first piece at once (after `tts_first_byte_secs`), then at `tts_speed` x real time
            due = started + at / (2 * SAMPLE_RATE) / pacing.tts_speed
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await piece(at, size)
    await send({"type": "http.response.body", "body": b""})
