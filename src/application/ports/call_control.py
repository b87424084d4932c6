"""Call control across instances: ask the instance holding a run to act on its live call.

A run records the instance that holds its socket (`WorkflowRun.instance_id`). A REST hang-up or
transfer may reach any instance; when another one holds the call, the request goes to it through
this port and the answer waits for its acknowledgement: it found the live call and started the
action (`TAKEN`), or it has no such live call (`NOT_LIVE`). No acknowledgement within the
channel's bound raises `HolderUnavailableError`, never a silent success.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class ControlAction(StrEnum):
    HANGUP = "hangup"
    TRANSFER = "transfer"


class ControlAnswer(StrEnum):
    TAKEN = "taken"  # the holder found the live call and started the action
    NOT_LIVE = "not_live"  # the holder has no live call for the run


@dataclass(frozen=True, slots=True)
class ControlRequest:
    run_id: int
    run_name: str  # for the holder's log lines
    action: ControlAction
    destination: str | None = None  # a transfer's, already checked by the asking instance


class HolderUnavailableError(Exception):
    """The instance holding the call did not acknowledge the request in time (it is gone, or the
    channel between the instances is down)."""


ControlHandler = Callable[[ControlRequest], Awaitable[ControlAnswer]]
"""What an instance does with a request addressed to it (it acts on its own live calls)."""


class CallControlChannel(Protocol):
    """Requests between instances. Each instance serves the requests addressed to it with the
    `ControlHandler` it was built with."""

    @abstractmethod
    async def ask(self, holder: str, request: ControlRequest) -> ControlAnswer:
        """Send `request` to instance `holder` and wait, bounded, for its answer.

        Raises `HolderUnavailableError` when no answer comes within the bound."""
