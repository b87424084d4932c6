"""The `pipecat` engine: a voice agent (speech-to-text, LLM, text-to-speech, or a speech-to-speech
model) built on the Pipecat framework and bridged to our `ActiveCall`.

Pipecat is an optional extra (`pip install 'agent-stream[pipecat]'`): this package imports it only
when the engine is built, so the service runs without it (the engine is then simply not offered).
"""

from __future__ import annotations

import importlib.util

from application.ports.live_call import AgentPipeline
from application.ports.tracing import NO_TRACER, Tracer


def pipecat_available() -> bool:
    return importlib.util.find_spec("pipecat") is not None


def build_pipecat_pipeline(tracer: Tracer = NO_TRACER) -> AgentPipeline:
    """The engine, with its process-wide parts (the VAD model, the speech cache) loaded once."""
    from adapters.pipelines.pipecat.logs import route_pipecat_logs

    route_pipecat_logs()  # before Pipecat's first import, which logs a banner
    from adapters.pipelines.pipecat.engine import PipecatPipeline

    return PipecatPipeline(tracer=tracer)
