"""The built-in `linetest` engine."""

from __future__ import annotations

from typing import Any

from application.ports.calls import ActiveCall, AgentPipeline, CallOutcome, DtmfIn, StopIn
from domain.agents import AgentDefinition
from domain.workflow_run import EndReason


class LineTestPipeline(AgentPipeline):
    async def run(
        self, call: ActiveCall, definition: AgentDefinition, context: dict[str, Any]
    ) -> CallOutcome:
        digits: list[str] = []
        async for event in call.events():
            if isinstance(event, DtmfIn):
                digits.append(event.digit)
            elif isinstance(event, StopIn):
                break
        return CallOutcome(end_reason=EndReason.CALLER_HANGUP, gathered={"dtmf": "".join(digits)})
