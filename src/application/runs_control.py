"""Control of a live call from outside it (REST): hang up, transfer.

The call must be live on this instance (`LiveCallRegistry`). The provider's API is slow next to
an HTTP answer, so the action runs in a background task (`CallControlTasks`) and the caller gets
an immediate acknowledgement; how the call ended shows on its run. A failure is logged.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from application import log_context
from application.live_calls import LiveCallRegistry
from application.management import GetRun, InvalidInputError
from domain.workflow_run import WorkflowRun

log = logging.getLogger(__name__)

MAX_DESTINATION_LENGTH = 256
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_SIP_URI = re.compile(r"sips?:[^\s<>\"'@;?]+(?:@[^\s<>\"'@;?]+)?(?:;[^\s<>\"']*)?", re.IGNORECASE)


def transfer_destination(value: str) -> str:
    """`value` when it is an E.164 number (`+15555550123`) or a SIP URI (`sip:desk@example.com`)."""
    destination = value.strip()
    if len(destination) > MAX_DESTINATION_LENGTH or not (
        _E164.fullmatch(destination) or _SIP_URI.fullmatch(destination)
    ):
        raise InvalidInputError(
            "destination",
            "must be an E.164 number such as +15555550123 or a SIP URI such as sip:desk@example.com",
        )
    return destination


class CallControlTasks:
    """The call-control actions under way: one task each, kept referenced until it ends.

    One per process. Tasks inherit the log context of the run they act on; an action that fails
    is logged (`call_control_failed`), never raised into the loop's exception handler.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, run: WorkflowRun, action: str, work: Callable[[], Awaitable[None]]) -> None:
        async def act() -> None:
            try:
                await work()
                log.info("call_control_done", extra={"action": action})
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("call_control_failed", extra={"action": action})

        with log_context.bound(run_id=run.name):
            task = asyncio.get_running_loop().create_task(act(), name=f"call-control-{action}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def pending(self) -> int:
        return len(self._tasks)

    async def aclose(self) -> None:
        """Cancel what is still under way (at shutdown) and wait for it to stop."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@dataclass(frozen=True, slots=True)
class ControlRequested:
    run: WorkflowRun
    action: str
    destination: str | None = None


class HangUpRun:
    def __init__(self, get_run: GetRun, live_calls: LiveCallRegistry, tasks: CallControlTasks) -> None:
        self._get_run = get_run
        self._live_calls = live_calls
        self._tasks = tasks

    async def execute(self, organization_id: int, run_id: int) -> ControlRequested:
        """Raises `NotFoundError` for another organisation's run, `CallNotLiveError` when the run
        has no live call on this instance."""
        run = await self._get_run.execute(organization_id, run_id)
        call = self._live_calls.get(run_id)
        self._tasks.start(run, "hangup", call.hang_up)
        log.info("call_control_requested", extra={"action": "hangup"})
        return ControlRequested(run, "hangup")


class TransferRun:
    def __init__(self, get_run: GetRun, live_calls: LiveCallRegistry, tasks: CallControlTasks) -> None:
        self._get_run = get_run
        self._live_calls = live_calls
        self._tasks = tasks

    async def execute(self, organization_id: int, run_id: int, destination: str) -> ControlRequested:
        """As `HangUpRun`, and `InvalidInputError` for a destination that is neither E.164 nor SIP."""
        target = transfer_destination(destination)
        run = await self._get_run.execute(organization_id, run_id)
        call = self._live_calls.get(run_id)

        async def transfer() -> None:
            await call.transfer(target)

        self._tasks.start(run, "transfer", transfer)
        log.info("call_control_requested", extra={"action": "transfer"})
        return ControlRequested(run, "transfer", target)
