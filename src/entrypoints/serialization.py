"""JSON shapes of domain objects, shared by the REST API and the CLI (interfaces.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from application.ports.webhooks import RunDocuments
from domain.agents import Workflow
from domain.telephony import TelephonyConfig
from domain.webhooks import WebhookDelivery
from domain.workflow_run import WorkflowRun


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def run_to_dict(run: WorkflowRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "name": run.name,
        "agent_uuid": str(run.agent_uuid),
        "state": str(run.state),
        "call_type": run.call_type,
        "mode": run.mode,
        "initial_context": run.initial_context,
        "gathered_context": run.gathered_context,
        "logs": run.logs,
        "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at),
        "ended_at": _iso(run.ended_at),
        "duration_seconds": run.duration_seconds,
        "end_reason": run.end_reason,
        "close_code": run.close_code,
        "close_reason": run.close_reason,
        "disposition": run.disposition,
        "trace_id": run.trace_id,
        "recording": run.recording.to_api() if run.recording is not None else None,
    }


def agent_to_dict(workflow: Workflow) -> dict[str, Any]:
    return {
        "uuid": str(workflow.uuid),
        "id": workflow.id,
        "name": workflow.name,
        "status": str(workflow.status),
        "definition": workflow.definition.to_dict(),
        "template_context_variables": workflow.template_variables,
        "created_at": _iso(workflow.created_at),
        "updated_at": _iso(workflow.updated_at),
    }


def config_to_dict(config: TelephonyConfig) -> dict[str, Any]:
    return {
        "id": config.id,
        "provider": str(config.provider),
        "domain_id": config.domain_id,
        "name": config.name,
        "bearer_token": config.bearer_token.masked(),
    }


def webhook_to_dict(delivery: WebhookDelivery) -> dict[str, Any]:
    """The run's `webhook`: its delivery's state, attempts and the last answer's status."""
    return {"state": str(delivery.state), "attempts": delivery.attempts, "last_status": delivery.last_status}


class RunJson(RunDocuments):
    """The run as the REST API shows it: the webhook's `data`."""

    def document(self, run: WorkflowRun) -> dict[str, Any]:
        return run_to_dict(run)
