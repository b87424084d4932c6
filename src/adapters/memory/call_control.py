"""Call control between instances of one process: the embedded SQLite database (one process) and
the unit tests (several instances side by side)."""

from __future__ import annotations

import asyncio

from application.ports.call_control import (
    CallControlChannel,
    ControlAnswer,
    ControlHandler,
    ControlRequest,
    HolderUnavailableError,
)

ACK_TIMEOUT_SECONDS = 2.5


class InMemoryCallControlHub:
    """The instances of this process, by id, each with the handler that serves its requests."""

    def __init__(self) -> None:
        self._handlers: dict[str, ControlHandler] = {}

    def join(
        self, instance_id: str, handler: ControlHandler, ack_timeout: float = ACK_TIMEOUT_SECONDS
    ) -> InMemoryCallControl:
        self._handlers[instance_id] = handler
        return InMemoryCallControl(self, instance_id, ack_timeout)

    def leave(self, instance_id: str) -> None:
        self._handlers.pop(instance_id, None)

    def handler(self, instance_id: str) -> ControlHandler | None:
        return self._handlers.get(instance_id)


class InMemoryCallControl(CallControlChannel):
    """One instance's end of the hub. An instance that is not in the hub (another process's, or
    one that left) cannot answer: `HolderUnavailableError` at once."""

    def __init__(self, hub: InMemoryCallControlHub, instance_id: str, ack_timeout: float) -> None:
        self._hub = hub
        self.instance_id = instance_id
        self._ack_timeout = ack_timeout

    async def ask(self, holder: str, request: ControlRequest) -> ControlAnswer:
        handler = self._hub.handler(holder)
        if handler is None:
            raise HolderUnavailableError(holder)
        try:
            async with asyncio.timeout(self._ack_timeout):
                return await handler(request)
        except TimeoutError:
            raise HolderUnavailableError(holder) from None

    def close(self) -> None:
        self._hub.leave(self.instance_id)
