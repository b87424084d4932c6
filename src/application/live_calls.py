"""The calls live on this instance, by run id, for call control from outside the call (REST)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from application.ports.calls import ActiveCall

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


async def drain(registry: LiveCallRegistry, grace_seconds: float) -> int:
    """Stop admitting calls, let live ones go on for up to `grace_seconds`, then end the rest
    through their provider (never by just dropping the socket). Returns how many were hung up."""
    registry.draining = True
    log.info("drain_started", extra={"live_calls": len(registry), "grace_seconds": grace_seconds})
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(grace_seconds):
            await registry.wait_empty()
    remaining = registry.calls()
    results = await asyncio.gather(*(call.hang_up() for call in remaining), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            log.error("drain_hangup_failed", exc_info=result)
    log.info("drain_finished", extra={"hung_up": len(remaining)})
    return len(remaining)
