"""The calls live on this instance, by run id, for call control from outside the call (REST)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from application.ports.live_call import ActiveCall
from domain.workflow_run import EndReason

log = logging.getLogger(__name__)


class CallNotLiveError(LookupError):
    """The run has no live call on this instance (never started, or already ended)."""


class LiveCallRegistry:
    """Also the instance's admission switch: once `draining`, no new call is admitted."""

    def __init__(self) -> None:
        self._calls: dict[int, ActiveCall] = {}
        self._empty: asyncio.Event | None = None
        self.draining = False

    def register(self, run_id: int, call: ActiveCall) -> None:
        self._calls[run_id] = call

    def unregister(self, run_id: int) -> None:
        self._calls.pop(run_id, None)
        if not self._calls and self._empty is not None:
            self._empty.set()

    async def wait_empty(self) -> None:
        """Until no call is live."""
        if not self._calls:
            return
        if self._empty is None or self._empty.is_set():
            self._empty = asyncio.Event()
        await self._empty.wait()

    def get(self, run_id: int) -> ActiveCall:
        call = self._calls.get(run_id)
        if call is None:
            raise CallNotLiveError(run_id)
        return call

    def __len__(self) -> int:
        return len(self._calls)

    def calls(self) -> list[ActiveCall]:
        return list(self._calls.values())


async def drain(
    registry: LiveCallRegistry,
    grace_seconds: float,
    cut_short: asyncio.Event | None = None,
    hang_up_within: float | None = None,
) -> int:
    """Stop admitting calls, let live ones go on for up to `grace_seconds` (or until `cut_short`
    is set), then end the rest through their provider (never by just dropping the socket).
    Returns how many were hung up."""
    registry.draining = True
    log.info("drain_started", extra={"live_calls": len(registry), "grace_seconds": grace_seconds})
    waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(registry.wait_empty())]
    if cut_short is not None:
        waits.append(asyncio.ensure_future(cut_short.wait()))
    try:
        await asyncio.wait(waits, timeout=grace_seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
    hung_up = await hang_up_all(registry, within=hang_up_within)
    log.info("drain_finished", extra={"hung_up": hung_up})
    return hung_up


async def hang_up_all(registry: LiveCallRegistry, within: float | None = None) -> int:
    """End every live call through its provider, all at once (`drained` on their runs); with
    `within`, give up waiting after that many seconds. Returns how many calls were asked."""
    registry.draining = True
    remaining = registry.calls()
    hang_ups = asyncio.gather(
        *(call.hang_up(EndReason.DRAINED) for call in remaining), return_exceptions=True
    )
    try:
        async with asyncio.timeout(within):
            results = await hang_ups
    except TimeoutError:
        log.error("hang_up_all_timed_out", extra={"calls": len(remaining), "seconds": within})
        return len(remaining)
    for result in results:
        if isinstance(result, BaseException):
            log.error("drain_hangup_failed", exc_info=result)
    return len(remaining)
