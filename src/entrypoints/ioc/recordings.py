"""Call recordings: the store `AGENT_STREAM_RECORDINGS_URL` names, the recorder writing into a
local spool, and the use cases reading and recovering recordings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from dishka import Provider, Scope, provide

from adapters.recording.recorder import SpoolRecorder
from adapters.recording.stores import folder_of, recording_store
from application.management import GetRun
from application.ports.recordings import CallRecorder, RecordingStore
from application.ports.repositories import WorkflowRunRepository
from application.recordings import GetRecording, RecoverRecordings
from entrypoints.settings import DEFAULT_RECORDINGS_URL, Settings

SPOOL = ".partial"  # inside the recordings folder: calls being recorded, and what a crash left


def spool_folder(recordings_url: str) -> Path:
    """Where recordings are written during the call: inside the folder store; for object
    storage, inside the default folder (`./recordings`)."""
    folder = folder_of(recordings_url) or folder_of(DEFAULT_RECORDINGS_URL)
    assert folder is not None  # noqa: S101 - the default is a folder
    return folder / SPOOL


class RecordingsProvider(Provider):
    scope = Scope.APP

    @provide
    def provide_store(self, settings: Settings) -> RecordingStore:
        return recording_store(settings.recordings_url)

    @provide
    async def provide_recorder(
        self, settings: Settings, store: RecordingStore
    ) -> AsyncIterator[CallRecorder]:
        recorder = SpoolRecorder(store, spool_folder(settings.recordings_url), settings.public_url)
        yield recorder
        await recorder.aclose()

    @provide
    def provide_recovery(self, recorder: CallRecorder, runs: WorkflowRunRepository) -> RecoverRecordings:
        return RecoverRecordings(recorder, runs)

    @provide(scope=Scope.SESSION)
    def provide_get_recording(self, get_run: GetRun, store: RecordingStore) -> GetRecording:
        return GetRecording(get_run, store)
