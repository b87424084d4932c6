"""The call's audio as every engine sees it: 16-bit little-endian PCM, 8 kHz mono, both ways
(`AudioIn.pcm` in, `ActiveCall.play` out). Its rate and the arithmetic on it live here once."""

from __future__ import annotations

from typing import Final

CALL_RATE: Final = 8000  # Hz
BYTES_PER_SECOND: Final = 2 * CALL_RATE


def duration(pcm: bytes) -> float:
    """Seconds of audio in `pcm`."""
    return len(pcm) / BYTES_PER_SECOND


def silence(seconds: float) -> bytes:
    """`seconds` of silence (whole samples)."""
    return bytes(2 * int(CALL_RATE * seconds))
