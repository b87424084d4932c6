"""The `pipecat` engine: Pipecat's services and turn-taking over our `ActiveCall`.

`PipecatPipeline` is the `AgentPipeline` port; each call gets a `PipecatSession` (`session.py`).
What is ours, and why, and where it lives:

- **The transport** (`transport.py`): the VAD runs on the caller's audio as it arrives, and only
  speech enters the pipeline; agent audio goes out through the call's pacer, never more than
  `LEAD` ahead of what the caller has heard.
- **Playback tracking** (`playback.py`): a turn cut by barge-in is cut where the caller stopped
  hearing it, in the transcript and in what the model is shown next.
- **Turn records** (`journal.py`): the transcript and each turn's latency, stored off the media
  path.
- **One VAD model per process** (`vad.py`): Silero's ONNX session is loaded once, and the windows
  of all calls are scored in one model run every 30 ms; each call keeps only its own recurrent
  state (Pipecat loads one model per call: ~10 MB and a load on the event loop each time).
- **One end-of-turn model per process** (`smart_turn.py`): Smart Turn, for agents that ask for
  it, loaded once and run on one worker thread.
- **Start-up overlaps the handshake**: the greeting and the apology are asked of the TTS (or taken
  from the process's cache, `speech_cache.py`) while the provider's session is being validated,
  and the greeting plays as it streams in.
- **Never silence**: every OpenAI-compatible request is retried once (`services.py`); a service
  that still fails makes the agent apologise and end the call, and the run says which service
  failed (`session.py`).
"""

from __future__ import annotations

from typing import Any

from adapters.pipelines.pipecat.assembly import EngineParts
from adapters.pipelines.pipecat.logs import route_pipecat_logs
from adapters.pipelines.pipecat.services import SharedHttp
from adapters.pipelines.pipecat.session import PipecatSession
from adapters.pipelines.pipecat.settings import PipecatSettings
from adapters.pipelines.pipecat.smart_turn import smart_turn_models
from adapters.pipelines.pipecat.speech_cache import SpeechCache
from adapters.pipelines.pipecat.vad import SileroBatch, silero_session
from application.ports.live_call import AgentPipeline, AgentSession, CallJournal
from application.ports.tracing import NO_TRACER, Tracer
from domain.agents import AgentDefinition


class PipecatPipeline(AgentPipeline):
    def __init__(self, environ: dict[str, str] | None = None, tracer: Tracer = NO_TRACER) -> None:
        route_pipecat_logs()
        self.vad = SileroBatch(silero_session())  # loaded now, not on the event loop during a call
        self._environ = environ
        self.http = SharedHttp()
        self.speech = SpeechCache(self.http)
        self.smart_turn = smart_turn_models()  # loaded when an agent first asks for it
        self._parts = EngineParts(
            vad=self.vad, http=self.http, speech=self.speech, smart_turn=self.smart_turn, tracer=tracer
        )

    def prepare(
        self, definition: AgentDefinition, context: dict[str, Any], journal: CallJournal
    ) -> AgentSession:
        settings = PipecatSettings.from_definition(definition, context, self._environ)
        return PipecatSession(self._parts, settings, journal)

    async def aclose(self) -> None:
        await self.speech.aclose()
        await self.http.aclose()
