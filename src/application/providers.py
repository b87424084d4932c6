"""The provider registry: which providers Agent Stream knows, and which it can open calls for."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import Protocol

from application.ports.live_call import ActiveCall, CallSocket
from domain.agents import Workflow
from domain.close_policy import ProviderNotImplementedError, UnknownProviderError
from domain.stream_events import StreamStart
from domain.stream_request import AgentStreamRequest
from domain.telephony import Provider
from domain.workflow_run import WorkflowRun


class CallOpener(Protocol):
    """A provider's step 7: turn an accepted socket into an `ActiveCall`, or refuse it."""

    @abstractmethod
    async def open(
        self,
        socket: CallSocket,
        request: AgentStreamRequest,
        workflow: Workflow,
        run: WorkflowRun,
        on_start: Callable[[StreamStart], None] | None = None,
    ) -> ActiveCall:
        """May record what it learns on `run.logs`; raises `StreamRefusedError` subclasses.

        `on_start` is called once the provider's `start` is read, before the session is validated,
        so the agent's start-up overlaps the validation; what it raises refuses the stream."""


class NotImplementedOpener(CallOpener):
    """A provider we know of but have no agent-stream implementation for: closes 1011."""

    def __init__(self, provider: str) -> None:
        self.provider = provider

    async def open(
        self,
        socket: CallSocket,
        request: AgentStreamRequest,
        workflow: Workflow,
        run: WorkflowRun,
        on_start: Callable[[StreamStart], None] | None = None,
    ) -> ActiveCall:
        raise ProviderNotImplementedError(self.provider)


class ProviderRegistry:
    def __init__(self, openers: dict[str, CallOpener]) -> None:
        self._openers = dict(openers)
        for provider in Provider:
            self._openers.setdefault(provider.value, NotImplementedOpener(provider.value))

    def resolve(self, name: str | None) -> CallOpener:
        """The opener of `name`; unknown or missing names are a 1008 routing refusal."""
        opener = self._openers.get(name or "")
        if opener is None:
            raise UnknownProviderError(name)
        return opener
