"""Ports of call recording: one call's recording as it is written, the recorder that opens them
(and repairs what a crash left), and the store the finished files go to."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

from domain.recording import RunRecording
from domain.workflow_run import WorkflowRun


class CallRecording(Protocol):
    """One call's stereo recording, written as the call goes (off the event loop).

    The first three methods are on the call's hot path: they only hand bytes over (no encoding,
    no I/O). Times are the event loop's monotonic clock (`time.monotonic()`).
    """

    @abstractmethod
    def caller(self, pcm: bytes, position: float | None, arrival: float) -> None:
        """Caller audio (16-bit PCM, 8 kHz) at `position` seconds of the provider's stream clock
        (its `media.timestamp`, or a count of frames), `None` when the provider gave none (it then
        follows the previous frame); `arrival` is when it arrived."""

    @abstractmethod
    def agent(self, frame: bytes, plays_at: float) -> None:
        """An agent frame as sent to the provider, in the call's encoding (`agent_encoding`), that
        starts playing at `plays_at`."""

    @abstractmethod
    def cut(self, at: float) -> None:
        """A `clear` at `at`: agent audio sent to play from then on was discarded, never heard."""

    @abstractmethod
    def agent_encoding(self, encoding: str) -> None:
        """The encoding of the agent's frames (`mulaw`, `alaw` or `pcm16`); set once, first."""

    @abstractmethod
    async def finish(self) -> RunRecording | None:
        """Write the rest, close the file and store it; `None` when it could not be stored (the
        file is kept and stored at the next start)."""


class CallRecorder(Protocol):
    @abstractmethod
    def open(self, run: WorkflowRun) -> CallRecording:
        """Start recording `run`'s call (the run has its id)."""

    @abstractmethod
    async def leftovers(self) -> list[int]:
        """The run ids of recordings a crash (or a failed store) left behind, unfinished or
        unstored."""

    @abstractmethod
    async def store_leftover(self, run_id: int) -> RunRecording | None:
        """Repair run `run_id`'s leftover recording (its WAV sizes) and store it; `None` when there
        is nothing to store or the store failed (it is tried again at the next start)."""

    @abstractmethod
    async def aclose(self) -> None:
        """Stop the writer (at shutdown), finishing what is open."""


class RecordingStore(Protocol):
    """Where finished recordings are kept: a folder or S3-compatible object storage."""

    @abstractmethod
    async def put(self, key: str, path: Path) -> None:
        """Store the file at `path` under `key`; the local file is gone afterwards."""

    @abstractmethod
    async def size(self, key: str) -> int | None:
        """The stored file's size in bytes, `None` when there is none."""

    @abstractmethod
    def read(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes `start` to `end` (inclusive) of the stored file, in chunks."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release the store's connections (at shutdown)."""
