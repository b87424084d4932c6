"""The `CallRecorder`: each recorded call's WAV is written into a spool folder on local disk as the
call goes (`writer`), then handed to the `RecordingStore` when it ends. What a crash leaves in the
spool (`run-<id>.wav.part`, or a finished `run-<id>.wav` the store did not take) is repaired and
stored by the next start (`RecoverRecordings`)."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Final

from adapters.recording.wav import BYTES_PER_SECOND, HEADER_BYTES, repair
from adapters.recording.writer import RecordingWriter, TimelineRecording
from application.ports.recordings import CallRecorder, CallRecording, RecordingStore
from domain.recording import RunRecording, recording_key, recording_url, run_id_of_key
from domain.workflow_run import WorkflowRun

log = logging.getLogger(__name__)

PART: Final = ".part"


class StoredRecording(CallRecording):
    """A call's `TimelineRecording`, stored when it finishes."""

    def __init__(self, timeline: TimelineRecording, recorder: SpoolRecorder, run_id: int) -> None:
        self._timeline = timeline
        self._recorder = recorder
        self._run_id = run_id

    def caller(self, pcm: bytes, position: float | None, arrival: float) -> None:
        self._timeline.caller(pcm, position, arrival)

    def agent(self, frame: bytes, plays_at: float) -> None:
        self._timeline.agent(frame, plays_at)

    def cut(self, at: float) -> None:
        self._timeline.cut(at)

    def agent_encoding(self, encoding: str) -> None:
        self._timeline.agent_encoding(encoding)

    async def finish(self) -> RunRecording | None:
        try:
            await self._timeline.finish()
        except Exception:
            log.exception("recording_not_finished")  # the spool keeps it; the next start repairs it
            return None
        if self._timeline.dropped:
            log.warning("recording_frames_dropped", extra={"dropped": self._timeline.dropped})
        final = self._timeline.path.with_suffix("")  # run-<id>.wav
        await asyncio.to_thread(self._timeline.path.replace, final)
        return await self._recorder.store(self._run_id, final)


class SpoolRecorder(CallRecorder):
    def __init__(self, store: RecordingStore, spool: Path, public_url: str) -> None:
        self._store = store
        self._spool = spool
        self._public_url = public_url
        self._writer = RecordingWriter()

    def open(self, run: WorkflowRun) -> CallRecording:
        run_id = run.stored_id
        self._spool.mkdir(parents=True, exist_ok=True)
        path = self._spool / (recording_key(run_id) + PART)
        return StoredRecording(self._writer.open(path, time.monotonic()), self, run_id)

    async def store(self, run_id: int, path: Path) -> RunRecording | None:
        """Hand the finished file at `path` to the store; on failure it stays in the spool."""
        key = recording_key(run_id)
        size = (await asyncio.to_thread(path.stat)).st_size
        try:
            await self._store.put(key, path)
        except Exception:
            log.exception("recording_not_stored", extra={"key": key})
            return None
        return RunRecording(
            key=key,
            url=recording_url(self._public_url, run_id),
            seconds=round(max(0, size - HEADER_BYTES) / BYTES_PER_SECOND, 3),
            bytes=size,
        )

    async def leftovers(self) -> list[int]:
        if not self._spool.is_dir():
            return []
        names = await asyncio.to_thread(lambda: [p.name for p in self._spool.iterdir() if p.is_file()])
        return sorted({run_id for name in names if (run_id := run_id_of_key(name)) is not None})

    async def store_leftover(self, run_id: int) -> RunRecording | None:
        final = self._spool / recording_key(run_id)
        partial = final.with_name(final.name + PART)
        if partial.exists():
            await asyncio.to_thread(repair, partial)
            await asyncio.to_thread(partial.replace, final)
        if not final.exists():
            return None
        await asyncio.to_thread(repair, final)  # a finished file has its sizes right: a no-op then
        return await self.store(run_id, final)

    async def aclose(self) -> None:
        await asyncio.to_thread(self._writer.stop)
        await self._store.aclose()
