"""One call's agent on the `pipecat` engine, from `prepare` to the call's end.

`PipecatSession` is prepared while the handshake is validated: the greeting and the apology are
asked of the TTS (or taken from the process's cache) meanwhile, and the call starts without waiting
for them: the greeting plays as it streams in, while the pipeline already hears the caller (a
caller who spoke while nothing played is heard then, not seconds later from a backlog, barging in
on the greeting). `Conversation` is the call itself: the
pipeline running over the `ActiveCall`, the agent's tools (hang up, transfer), and never silence:
a service that still fails after its retry makes the agent apologise (pre-synthesised audio, so a
failing TTS can apologise too) and end the call, and the run says which service failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog
from pipecat.frames.frames import FunctionCallResultProperties, LLMRunFrame, TTSSpeakFrame
from pipecat.pipeline.worker import PipelineWorker
from pipecat.services.llm_service import FunctionCallParams
from pipecat.workers.runner import WorkerRunner

from adapters.pipelines.pipecat.assembly import EngineParts, build_worker
from adapters.pipelines.pipecat.journal import JournalWriter, TurnRecorder
from adapters.pipelines.pipecat.playback import HeardContext, Playback
from adapters.pipelines.pipecat.settings import PipecatSettings
from adapters.pipelines.pipecat.smart_turn import SmartTurnModel
from adapters.pipelines.pipecat.speech_cache import Speech
from application.ports.live_call import ActiveCall, AgentSession, CallControlError, CallJournal, CallOutcome
from domain.close_policy import Close, CloseCode
from domain.workflow_run import EndReason

log = structlog.get_logger(__name__)

GOODBYE_WAIT = 5.0  # at most this long for the agent's last words before a hang-up or transfer
STOP_TIMEOUT = 5.0  # for the pipeline to wind down once the call has ended
APOLOGY_WAIT = 3.0  # at most this long for an apology not synthesised yet


class PipecatSession(AgentSession):
    def __init__(self, parts: EngineParts, settings: PipecatSettings, journal: CallJournal) -> None:
        self._parts = parts
        self._settings = settings
        self._journal = JournalWriter(journal)
        tts, speech = settings.tts, parts.speech
        # asked for now, during the handshake; cached for the process's next calls
        self._greeting = speech.speak(tts, settings.greeting or "") if tts else None
        self._apology = speech.speak(tts, settings.apology) if tts else None
        self._turn_model = (
            asyncio.create_task(parts.smart_turn.get()) if settings.turn_detection == "smart_turn" else None
        )
        self._tasks: set[asyncio.Task[Any]] = set()  # the call's own (a goodbye, an apology)

    async def aclose(self) -> None:
        if self._turn_model is not None:
            self._turn_model.cancel()
        for task in list(self._tasks):
            task.cancel()
        await self._journal.aclose()

    async def run(self, call: ActiveCall) -> CallOutcome:
        conversation = Conversation(
            call, self._settings, self._parts, self._journal, self._tasks, self._apology
        )
        turn_model = await self._turn_model if self._turn_model is not None else None
        return await conversation.run(self._greeting, turn_model)


class Conversation:
    """The agent on a live call: runs the pipeline until the call ends, and is the pipeline's
    `CallHooks` (the caller's lines, failures, the agent's tools)."""

    def __init__(
        self,
        call: ActiveCall,
        settings: PipecatSettings,
        parts: EngineParts,
        journal: JournalWriter,
        tasks: set[asyncio.Task[Any]],
        apology: Speech | None,
    ) -> None:
        self._call = call
        self._settings = settings
        self._parts = parts
        self._journal = journal
        self._tasks = tasks
        self._apology = apology
        self._ended = asyncio.Event()
        self._failure: str | None = None
        self._failing = False
        self._heard = HeardContext()
        self._recorder = TurnRecorder(journal, settings.vad_stop_secs, parts.tracer.current())
        self._playback = Playback(call, self._turn_ended)
        self._playback.on_first_audio = self._recorder.first_audio
        self._worker: PipelineWorker | None = None  # built once the greeting plays

    async def run(self, greeting: Speech | None, turn_model: SmartTurnModel | None = None) -> CallOutcome:
        call, playback = self._call, self._playback
        text = self._settings.greeting
        playing = None
        if text and greeting is not None:
            playing = playback.play(text, greeting.pieces())  # as it arrives
            await asyncio.sleep(0)  # let the pacer send what has come before the build's CPU work

        worker = self._worker = build_worker(
            call, self._settings, self._parts, playback, self._recorder, self._heard, self, turn_model
        )
        if text and playing is None:
            # spoken by the pipeline's TTS; a speech-to-speech model is asked to say it
            await worker.queue_frame(TTSSpeakFrame(text) if self._settings.tts else LLMRunFrame())
        elif text and playing is not None:
            self._spawn(self._greeting_fallback(playing, text))
        runner = WorkerRunner(handle_sigint=False, check_dangling_tasks=False)
        await runner.add_workers(worker)
        running = asyncio.create_task(runner.run())
        ended = asyncio.create_task(self._ended.wait())
        try:
            async with asyncio.timeout(self._settings.max_call_seconds):
                await asyncio.wait({running, ended}, return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            await call.hang_up(EndReason.MAX_DURATION)
        finally:
            ended.cancel()
            if not running.done():
                await worker.cancel(reason="call ended")
            try:
                async with asyncio.timeout(STOP_TIMEOUT):
                    await running
            except TimeoutError:
                log.warning("pipeline_stop_timeout")
                running.cancel()
            for task in list(self._tasks):
                task.cancel()
        playback.cut(call.played_seconds())  # a turn still playing ends where the caller left it
        if not self._ended.is_set() and call.ended_by is None:
            # The pipeline stopped on its own: never leave the caller in silence.
            self._failure = self._failure or "pipeline stopped"
            await call.hang_up(EndReason.ERROR, self._failure_close())
        await self._journal.finish()
        return self._outcome()

    async def _greeting_fallback(self, playing: asyncio.Task[float], greeting: str) -> None:
        """A greeting the speech cache could not fetch (nothing of it came) is spoken by the
        pipeline's TTS, which fails the call the usual way when it cannot either."""
        await asyncio.wait({playing})
        if playing.cancelled():  # a barge-in stopped it: the caller has the word
            return
        if not playing.result() and self._worker is not None:
            await self._worker.queue_frame(TTSSpeakFrame(greeting))

    def _outcome(self) -> CallOutcome:
        if self._failure is not None:
            return CallOutcome(EndReason.ERROR, {"error": self._failure}, self._failure_close())
        return CallOutcome(self._call.ended_by or EndReason.CALLER_HANGUP)

    def _failure_close(self) -> Close:
        return Close(CloseCode.INTERNAL_ERROR, f"Agent failed: {self._failure}"[:123])

    def _turn_ended(self, generated: str, heard: str, interrupted: bool) -> None:
        if interrupted:
            self._heard.cut = (generated, heard)
        if heard:
            self._journal.record_line("agent", heard, interrupted=interrupted)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- what the pipeline reports ----------------------------------------------------------------

    def stopped(self) -> None:
        self._ended.set()

    def caller_said(self, text: str) -> None:
        self._journal.record_line("caller", text)

    def failed(self, kind: str, error: str) -> None:
        if self._failing:
            return
        self._failing = True
        self._failure = f"{kind} failed"
        log.warning("agent_service_failed", service=kind, error=error[:200])
        self._spawn(self._apologise(spoken_by_tts=kind != "tts"))

    async def _apologise(self, spoken_by_tts: bool) -> None:
        """The cached apology when there is one; else the pipeline's TTS says it, unless the TTS is
        what failed. Then the call ends through the provider."""
        playback = self._playback
        await playback.interrupt()
        apology = None
        if self._apology is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(APOLOGY_WAIT):
                    apology = await self._apology.whole()
        if apology:
            await playback.speak(self._settings.apology, apology)
            playback.turn_done()
        elif spoken_by_tts and self._settings.tts is not None and self._worker is not None:
            await self._worker.queue_frame(TTSSpeakFrame(self._settings.apology))
            await self._after_last_words(None)
        await self._call.hang_up(EndReason.ERROR, self._failure_close())

    # -- the agent's tools ------------------------------------------------------------------------

    async def end_call(self, params: FunctionCallParams) -> None:
        await params.result_callback({"ok": True}, properties=FunctionCallResultProperties(run_llm=False))
        log.info("agent_end_call")
        self._spawn(self._after_last_words(self._hang_up))

    async def _hang_up(self) -> None:
        await self._call.hang_up(EndReason.AGENT_HANGUP)

    async def transfer_call(self, params: FunctionCallParams) -> None:
        destination = str(params.arguments.get("destination", "")).strip()
        if destination not in self._settings.transfer_destinations:
            log.info("agent_transfer_refused")
            await params.result_callback(
                {"ok": False, "error": "That destination is not allowed; the call was not transferred."}
            )
            return
        log.info("agent_transfer")
        await self._after_last_words(None)
        try:
            await self._call.transfer(destination)
        except CallControlError:
            await params.result_callback(
                {"ok": False, "error": "The transfer failed; the caller is still here."}
            )
            return
        await params.result_callback({"ok": True}, properties=FunctionCallResultProperties(run_llm=False))

    async def _after_last_words(self, then: Callable[[], Awaitable[None]] | None) -> None:
        """Wait (at most `GOODBYE_WAIT`) for what the agent is saying with the tool call."""
        playback = self._playback
        deadline = time.monotonic() + GOODBYE_WAIT
        await asyncio.sleep(0.3)  # its sentence may still be on its way from the TTS
        while playback.speaking and time.monotonic() < deadline:  # noqa: ASYNC110 - a clock, not an event
            await asyncio.sleep(0.05)
        if then is not None:
            await then()
