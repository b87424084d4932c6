"""The calls live on this instance, by run id, for call control from outside the call (REST)."""

from __future__ import annotations

from application.ports.calls import ActiveCall


class CallNotLiveError(LookupError):
    """The run has no live call on this instance (never started, or already ended)."""


class LiveCallRegistry:
    def __init__(self) -> None:
        self._calls: dict[int, ActiveCall] = {}

    def register(self, run_id: int, call: ActiveCall) -> None:
        self._calls[run_id] = call

    def unregister(self, run_id: int) -> None:
        self._calls.pop(run_id, None)

    def get(self, run_id: int) -> ActiveCall:
        call = self._calls.get(run_id)
        if call is None:
            raise CallNotLiveError(run_id)
        return call

    def __len__(self) -> int:
        return len(self._calls)

    def run_ids(self) -> list[int]:
        return list(self._calls)
