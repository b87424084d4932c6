"""This instance's life in the shared database, and the stores its calls could not make.

An instance registers at start (and at once reaps its own previous life: an instance restarted
under the same name after a crash), then beats every third of the TTL: it renews its row and its
call slots' leases, retries the stores a call could not make while the database failed (a slot's
release, a run's end), and reaps the instances that stopped beating. Every instance reaps, so
the runs of a crashed one end `failed`/`instance_lost` as long as any instance lives, and a
restarted one cleans up after itself. A database that is down is not fatal: each beat tries
again, and the log says so once per kind of failure, not once per beat.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from application.failure_log import FailureLog
from application.ports.repositories import (
    CallSlots,
    Instances,
    Reaper,
    StorageError,
    WorkflowRunRepository,
)
from application.ports.run_feed import RunFeed
from application.ports.system import Clock
from application.run_journal import RunNews, publish, store_end
from domain.workflow_run import WorkflowRun

log = logging.getLogger(__name__)

MIN_BEAT_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class InstanceIdentity:
    instance_id: str  # this life of the process (new at every start)
    name: str  # where it runs (host:port): a restart under the same name reaps the previous life
    ttl_seconds: float

    @property
    def beat_seconds(self) -> float:
        return max(self.ttl_seconds / 3, MIN_BEAT_SECONDS)


class InstanceLife:
    def __init__(
        self,
        identity: InstanceIdentity,
        instances: Instances,
        slots: CallSlots,
        runs: WorkflowRunRepository,
        clock: Clock,
        *,
        feed: RunFeed,
    ) -> None:
        self.identity = identity
        self._instances = instances
        self._slots = slots
        self._runs = runs
        self._clock = clock
        self._feed = feed  # the runs a reaping ends are published
        self._registered = False
        self._slots_held: set[str] = set()
        self._runs_held: set[int] = set()
        self._releases: set[str] = set()
        self._ends: dict[int, tuple[WorkflowRun, RunNews | None]] = {}
        self._failures = FailureLog(log, "heartbeat_failed", "heartbeat_recovered")

    # what the calls hold, and what they hand over when the database failed them ----------------

    def hold_slot(self, slot_id: str) -> None:
        """A live call's slot: its lease is renewed at every beat until `drop_slot`."""
        self._slots_held.add(slot_id)

    def drop_slot(self, slot_id: str, released: bool) -> None:
        """The call is done with its slot; when its release failed (`released` false), the next
        beats retry it. Either way its lease is no longer renewed, so it expires by itself."""
        self._slots_held.discard(slot_id)
        if not released:
            self._releases.add(slot_id)

    def hold_run(self, run_id: int) -> None:
        """A live call's run: the reaper leaves it alone until `drop_run`."""
        self._runs_held.add(run_id)

    def drop_run(self, run: WorkflowRun, stored: bool, news: RunNews | None = None) -> None:
        """The call has ended its run; when the end could not be stored (`stored` false), the next
        beat that reaches the database stores it (the run stays held until then) and publishes it
        through `news`."""
        if run.id is None:
            return
        if stored:
            self._runs_held.discard(run.id)
        else:
            self._ends[run.id] = (run, news)

    def pending(self) -> int:
        """Stores still to be made for calls that have ended."""
        return len(self._releases) + len(self._ends)

    # the beat ---------------------------------------------------------------------------------

    async def run(self) -> None:
        """Beat forever (cancel to stop)."""
        while True:
            await self.beat()
            await asyncio.sleep(self.identity.beat_seconds)

    async def beat(self) -> None:
        """One beat; a database failure is logged (once per kind) and retried at the next."""
        identity, now = self.identity, self._clock.now()
        try:
            if not self._registered:
                await self._instances.register(identity.instance_id, identity.name, now)
                self._registered = True
                log.info("instance_registered", extra={"instance_id": identity.instance_id})
                await self._reap(previous_life=True)
            elif not await self._instances.heartbeat(identity.instance_id, now):
                # Another instance found this one silent for longer than the TTL (the database was
                # out of reach) and ended its runs; the calls still live here will store their end.
                log.warning("instance_was_reaped", extra={"instance_id": identity.instance_id})
                await self._instances.register(identity.instance_id, identity.name, now)
            await self._slots.renew(self._slots_held, now, identity.ttl_seconds)
            await self._retry_pending()
            await self._reap(previous_life=False)
        except StorageError as exc:
            self._failures.failed(exc)
        else:
            self._failures.succeeded()

    async def _retry_pending(self) -> None:
        for slot_id in list(self._releases):
            await self._slots.release(slot_id)
            self._releases.discard(slot_id)
        for run_id, (run, news) in list(self._ends.items()):
            await store_end(self._runs, run)
            del self._ends[run_id]
            self._runs_held.discard(run_id)
            if news is not None:
                news.tell(run)
            log.info("run_end_stored_late", extra={"run_id": run.name, "state": str(run.state)})

    async def _reap(self, previous_life: bool) -> None:
        identity = self.identity
        reaper = Reaper(identity.instance_id, identity.name, frozenset(self._runs_held), previous_life)
        reaped = await self._instances.reap(self._clock.now(), identity.ttl_seconds, reaper)
        for change in reaped.ended:
            publish(self._feed, change)
        if reaped:
            log.warning(
                "instances_reaped",
                extra={
                    "instances": reaped.instances,
                    "runs": reaped.runs,
                    "slots": reaped.slots,
                    "abandoned_runs": reaped.abandoned,
                },
            )

    async def end(self) -> None:
        """At a clean shutdown, once the calls have ended: last retries, then the row goes."""
        try:
            await self._retry_pending()
            await self._instances.deregister(self.identity.instance_id)
        except StorageError as exc:
            log.warning("instance_end_failed", extra={"error": str(exc)[:200], "pending": self.pending()})
