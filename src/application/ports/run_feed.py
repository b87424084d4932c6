"""Run changes as they happen, per organisation, across instances (the console's live Runs tab).

Whoever changes a run (minted, started, ended — by its own instance or by a reaper) publishes a
`RunChange`; every instance delivers it to its subscribers of that organisation. A change says only
which run moved and to what state: a subscriber re-reads the run (organisation-scoped) for the rest.
Delivery is best effort and at most once per subscriber: a subscriber that falls behind loses the
oldest changes (it re-reads the list when it reconnects), and a publish never blocks or fails a call.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class RunChange:
    organization_id: int
    run_id: int
    agent_uuid: str
    state: str  # the run's state after the change (`RunState` value)


class RunFeed(Protocol):
    @abstractmethod
    def publish(self, change: RunChange) -> None:
        """Hand `change` on; returns at once (sending happens in the background), never raises."""

    @abstractmethod
    def subscribe(self, organization_id: int) -> AbstractAsyncContextManager[AsyncIterator[RunChange]]:
        """`async with feed.subscribe(org) as changes: async for change in changes: ...` — the
        changes of `organization_id`'s runs from now on, on every instance, until the block exits."""
