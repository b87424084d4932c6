"""Recordings: serving a run's recording to its organisation, and storing what a crash left."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from application.management import GetRun, NotFoundError
from application.ports.recordings import CallRecorder, RecordingStore
from application.ports.repositories import StorageError, WorkflowRunRepository

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RecordingFile:
    """A stored recording: its size, and its bytes from `start` to `end` (inclusive) on demand."""

    key: str
    size: int
    store: RecordingStore

    def read(self, start: int, end: int) -> AsyncIterator[bytes]:
        return self.store.read(self.key, start, end)


class GetRecording:
    def __init__(self, get_run: GetRun, store: RecordingStore) -> None:
        self._get_run = get_run
        self._store = store

    async def execute(self, organization_id: int, run_id: int) -> RecordingFile:
        """Raises `NotFoundError` unless the run belongs to `organization_id` and has a stored
        recording."""
        run = await self._get_run.execute(organization_id, run_id)
        if run.recording is None:
            raise NotFoundError("recording")
        size = await self._store.size(run.recording.key)
        if size is None:
            raise NotFoundError("recording")
        return RecordingFile(run.recording.key, size, self._store)


class RecoverRecordings:
    """At start-up: the recordings a crash left unfinished (or a store failure left unstored) are
    repaired and stored, and their runs say so. A run still live (on another instance sharing the
    folder) keeps its file for later."""

    def __init__(self, recorder: CallRecorder, runs: WorkflowRunRepository) -> None:
        self._recorder = recorder
        self._runs = runs

    async def execute(self) -> int:
        stored = 0
        for run_id in await self._recorder.leftovers():
            try:
                run = await self._runs.get(run_id)
                if run is not None and not run.state.terminal:
                    continue
                recording = await self._recorder.store_leftover(run_id)
                if recording is None:
                    continue
                stored += 1
                if run is not None:
                    run.recording = recording
                    await self._runs.save_recording(run)
            except StorageError as exc:
                log.warning("recording_recovery_failed", extra={"run_id": run_id, "error": str(exc)[:200]})
        if stored:
            log.info("recordings_recovered", extra={"count": stored})
        return stored
