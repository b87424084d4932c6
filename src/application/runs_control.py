"""Control of a live call from outside it (REST): hang up, transfer.

Any instance takes the request. The run names the instance that holds its call
(`WorkflowRun.instance_id`): when that is this one, the call is found in `LiveCallRegistry`;
otherwise the request goes to the holder through `CallControlChannel`, and the answer waits for
its acknowledgement. The provider's API is slow next to an HTTP answer, so the holder runs the
action in a background task (`CallControlTasks`) and acknowledges at once; how the call ended
shows on its run. A failure is logged.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from application import log_context
from application.live_calls import CallNotLiveError, LiveCallRegistry
from application.management import GetRun, InvalidInputError
from application.ports.call_control import (
    CallControlChannel,
    ControlAction,
    ControlAnswer,
    ControlRequest,
)
from domain.workflow_run import EndReason, WorkflowRun

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

    def start(self, run_name: str, action: str, work: Callable[[], Awaitable[None]]) -> None:
        async def act() -> None:
            try:
                await work()
                log.info("call_control_done", extra={"action": action})
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("call_control_failed", extra={"action": action})

        with log_context.bound(run_id=run_name):
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


class LocalCallControl:
    """The holder's side: act on a call live on this instance. One per process."""

    def __init__(self, live_calls: LiveCallRegistry, tasks: CallControlTasks) -> None:
        self._live_calls = live_calls
        self._tasks = tasks

    def act(self, request: ControlRequest) -> None:
        """Start the action on the live call; `CallNotLiveError` when there is none here."""
        call = self._live_calls.get(request.run_id)
        if request.action is ControlAction.TRANSFER:
            target = transfer_destination(request.destination or "")

            async def transfer() -> None:
                await call.transfer(target)

            self._tasks.start(request.run_name, request.action, transfer)
        else:

            async def hang_up() -> None:  # immediate: the operator's hang-up does not wait for the agent
                await call.hang_up(EndReason.OPERATOR_HANGUP)

            self._tasks.start(request.run_name, request.action, hang_up)

    async def serve(self, request: ControlRequest) -> ControlAnswer:
        """A request from another instance (the channel's `ControlHandler`)."""
        with log_context.bound(run_id=request.run_name):
            try:
                self.act(request)
            except CallNotLiveError:
                log.info("call_control_not_live", extra={"action": str(request.action)})
                return ControlAnswer.NOT_LIVE
            except InvalidInputError:  # checked by the asking instance: not ours to act on
                log.warning("call_control_refused", extra={"action": str(request.action)})
                return ControlAnswer.NOT_LIVE
            log.info("call_control_taken", extra={"action": str(request.action)})
            return ControlAnswer.TAKEN


class CallControl:
    """Routes a control request to the instance holding the run's call, this one or another."""

    def __init__(self, local: LocalCallControl, channel: CallControlChannel, instance_id: str) -> None:
        self._local = local
        self._channel = channel
        self._instance_id = instance_id

    async def request(self, run: WorkflowRun, action: ControlAction, destination: str | None = None) -> None:
        """Returns once the holder took the request. Raises `CallNotLiveError` when the run has
        ended or its holder has no live call for it, `HolderUnavailableError` when the holder
        did not answer in time."""
        if run.id is None or run.state.terminal:
            raise CallNotLiveError(run.id)
        request = ControlRequest(run.id, run.name, action, destination)
        holder = run.instance_id
        if holder is None or holder == self._instance_id:
            self._local.act(request)
            return
        with log_context.bound(run_id=run.name, trace_id=run.trace_id):
            log.info("call_control_forwarded", extra={"action": str(action), "holder": holder})
        if await self._channel.ask(holder, request) is ControlAnswer.NOT_LIVE:
            raise CallNotLiveError(run.id)


@dataclass(frozen=True, slots=True)
class ControlRequested:
    run: WorkflowRun
    action: str
    destination: str | None = None


class HangUpRun:
    def __init__(self, get_run: GetRun, control: CallControl) -> None:
        self._get_run = get_run
        self._control = control

    async def execute(self, organization_id: int, run_id: int) -> ControlRequested:
        """Raises `NotFoundError` for another organisation's run, `CallNotLiveError` when the run
        has no live call, `HolderUnavailableError` when the instance holding it did not answer."""
        run = await self._get_run.execute(organization_id, run_id)
        await self._control.request(run, ControlAction.HANGUP)
        with log_context.bound(run_id=run.name, trace_id=run.trace_id):
            log.info("call_control_requested", extra={"action": "hangup"})
        return ControlRequested(run, "hangup")


class TransferRun:
    def __init__(self, get_run: GetRun, control: CallControl) -> None:
        self._get_run = get_run
        self._control = control

    async def execute(self, organization_id: int, run_id: int, destination: str) -> ControlRequested:
        """As `HangUpRun`, and `InvalidInputError` for a destination that is neither E.164 nor SIP."""
        target = transfer_destination(destination)
        run = await self._get_run.execute(organization_id, run_id)
        await self._control.request(run, ControlAction.TRANSFER, target)
        with log_context.bound(run_id=run.name, trace_id=run.trace_id):
            log.info("call_control_requested", extra={"action": "transfer"})
        return ControlRequested(run, "transfer", target)
