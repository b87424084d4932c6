"""What the caller hears: the agent's audio on the caller's timeline, and when its marks are
echoed back, as a Twilio-like player would (protocol.md §1.5)."""

from __future__ import annotations

import math
from collections import deque
from typing import Final

import numpy as np
import numpy.typing as npt

from entrypoints.simulator.caller_audio import FRAME_SAMPLES, FRAME_SECONDS, RATE

VOICED_DBFS: Final = -45.0  # a 20 ms block louder than this is the agent talking

__all__ = ["EarRecording", "MarkEchoes"]


def _block_dbfs(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.float64]:
    """dBFS of each whole 20 ms block (a last partial block counts as a block of its own)."""
    n = samples.shape[0]
    blocks = [samples[i : i + FRAME_SAMPLES].astype(np.float64) for i in range(0, n, FRAME_SAMPLES)]
    rms = np.array([math.sqrt(float(np.mean(b * b))) if b.size else 0.0 for b in blocks])
    return np.asarray(20 * np.log10(np.maximum(rms, 1e-3) / 32768.0), dtype=np.float64)


# -- what the caller hears --------------------------------------------------------------------------


class EarRecording:
    """The agent's audio on the caller's timeline (seconds since the call started).

    Audio plays as it arrives, queued behind audio still playing; when the queue has run dry for
    longer than `jitter` seconds, the gap is filled with silence (shorter gaps are network jitter,
    absorbed). `finish` pads the end to the call's length.
    """

    def __init__(self, jitter: float = FRAME_SECONDS) -> None:
        self.jitter = jitter
        self._pcm = bytearray()
        self.received_samples = 0
        self.voiced_until: float | None = None  # when the last voiced audio heard ends playing

    @property
    def play_head(self) -> float:
        """When the audio received so far will have finished playing."""
        return len(self._pcm) / 2 / RATE

    @property
    def received_seconds(self) -> float:
        return self.received_samples / RATE

    def add(self, at: float, pcm: bytes) -> None:
        gap = at - self.play_head
        if gap > self.jitter:
            self._pcm += bytes(2 * round(gap * RATE))
        start = len(self._pcm) // 2
        self._pcm += pcm[: len(pcm) & ~1]
        samples = np.frombuffer(pcm[: len(pcm) & ~1], dtype="<i2")
        self.received_samples += samples.shape[0]
        loud = np.flatnonzero(_block_dbfs(samples) > VOICED_DBFS)
        if loud.size:
            end = start + min(samples.shape[0], (int(loud[-1]) + 1) * FRAME_SAMPLES)
            self.voiced_until = end / RATE

    def finish(self, at: float) -> None:
        if at > self.play_head:
            self._pcm += bytes(2 * round((at - self.play_head) * RATE))

    def level_dbfs(self, at: float, window: float = 0.1) -> float:
        """The level of what the caller hears at `at` (the `window` seconds before it)."""
        end = round(at * RATE)  # past the audio received, the caller hears silence
        begin = max(0, end - round(window * RATE))
        if end <= begin:
            return -96.0
        chunk = np.frombuffer(bytes(self._pcm[2 * begin : 2 * end]), dtype="<i2").astype(np.float64)
        rms = math.sqrt(float(np.sum(chunk * chunk)) / (end - begin))
        return max(-96.0, 20 * math.log10(max(rms, 1e-3) / 32768.0))

    def pcm(self) -> bytes:
        return bytes(self._pcm)


class MarkEchoes:
    """When to echo the agent's marks, as a Twilio-like player would.

    A mark is due when the audio received before it has finished playing; `clear` drops what is
    queued, so every pending mark is due at once (in order) and playback restarts from now.
    """

    def __init__(self) -> None:
        self._play_head = 0.0
        self._pending: deque[tuple[float, str]] = deque()

    def audio(self, at: float, seconds: float) -> None:
        self._play_head = max(self._play_head, at) + seconds

    def mark(self, at: float, name: str) -> None:
        self._pending.append((max(self._play_head, at), name))

    def clear(self, at: float) -> list[str]:
        names = [name for _, name in self._pending]
        self._pending.clear()
        self._play_head = at
        return names

    def due(self, at: float) -> list[str]:
        names: list[str] = []
        while self._pending and self._pending[0][0] <= at:
            names.append(self._pending.popleft()[1])
        return names

    @property
    def pending(self) -> int:
        return len(self._pending)
