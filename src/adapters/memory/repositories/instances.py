"""The instances sharing the store, and the reaping of the runs and slots of the dead ones."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from adapters.memory.repositories.calls import InMemoryCallSlots
from adapters.memory.repositories.runs import InMemoryWorkflowRunRepository
from adapters.memory.repositories.times import utc
from application.ports.repositories import Instances, Reaped, Reaper
from application.ports.run_feed import RunChange
from domain.close_policy import ABANDONED_CLOSE, INSTANCE_LOST_CLOSE
from domain.workflow_run import EndReason, WorkflowRun


@dataclasses.dataclass(slots=True)
class _Instance:
    name: str
    heartbeat_at: datetime


class InMemoryInstances(Instances):
    def __init__(self, runs: InMemoryWorkflowRunRepository, slots: InMemoryCallSlots) -> None:
        self._runs = runs
        self._slots = slots
        self._instances: dict[str, _Instance] = {}

    async def register(self, instance_id: str, name: str, now: datetime) -> None:
        self._instances[instance_id] = _Instance(name, utc(now))

    async def heartbeat(self, instance_id: str, now: datetime) -> bool:
        instance = self._instances.get(instance_id)
        if instance is None:
            return False
        instance.heartbeat_at = utc(now)
        return True

    async def deregister(self, instance_id: str) -> None:
        self._instances.pop(instance_id, None)

    async def reap(self, now: datetime, ttl_seconds: float, reaper: Reaper | None = None) -> Reaped:
        now = utc(now)
        silent_since = now - timedelta(seconds=ttl_seconds)
        previous_life = reaper if reaper is not None and reaper.previous_life else None
        dead = {
            instance_id: instance.heartbeat_at
            for instance_id, instance in self._instances.items()
            if instance.heartbeat_at < silent_since
            or (
                previous_life
                and instance.name == previous_life.name
                and instance_id != previous_life.instance_id
            )
        }
        for instance_id in dead:
            del self._instances[instance_id]
        ended = abandoned = 0
        changes: list[RunChange] = []
        for run in self._runs.live_runs():
            began = run.started_at or run.created_at
            if run.instance_id in dead or (run.instance_id not in self._instances and began < silent_since):
                seen = dead.get(run.instance_id or "", now)
                run.fail(max(began, min(seen, now)), EndReason.INSTANCE_LOST, INSTANCE_LOST_CLOSE)
                self._runs.ended(run)
                ended += 1
                changes.extend(self._change(run))
            elif (
                reaper is not None
                and run.instance_id == reaper.instance_id
                and run.id not in reaper.held_runs
                and began < silent_since
            ):
                run.fail(now, EndReason.ERROR, ABANDONED_CLOSE)
                self._runs.ended(run)
                abandoned += 1
                changes.extend(self._change(run))
        slots = self._slots.drop_instances(set(dead))
        return Reaped(instances=len(dead), runs=ended, slots=slots, abandoned=abandoned, ended=tuple(changes))

    def _change(self, run: WorkflowRun) -> list[RunChange]:
        organization_id = self._runs.organization_of(run)
        if organization_id is None or run.id is None:
            return []
        return [RunChange(organization_id, run.id, str(run.agent_uuid), str(run.state))]
