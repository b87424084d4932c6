"""Mappers between the domain and the rows: domain -> column values, row -> domain."""

from __future__ import annotations

from typing import Any

from adapters.sql.models import OrganizationRow, TelephonyConfigRow, UserRow, WorkflowRow, WorkflowRunRow
from application.ports.credentials import CredentialCipher
from domain.agents import AgentDefinition, Organization, User, Workflow, WorkflowStatus
from domain.recording import RunRecording
from domain.telephony import Provider, SecretStr, TelephonyConfig
from domain.workflow_run import RunState, WorkflowRun


def organization_values(organization: Organization) -> dict[str, Any]:
    return {"name": organization.name, "max_concurrent_calls": organization.max_concurrent_calls}


def organization_from_row(row: OrganizationRow) -> Organization:
    return Organization(name=row.name, max_concurrent_calls=row.max_concurrent_calls, id=row.id)


def user_values(user: User) -> dict[str, Any]:
    return {
        "organization_id": user.organization_id,
        "name": user.name,
        "monthly_minutes": user.monthly_minutes,
    }


def user_from_row(row: UserRow) -> User:
    return User(
        organization_id=row.organization_id,
        monthly_minutes=row.monthly_minutes,
        name=row.name,
        id=row.id,
    )


def workflow_values(workflow: Workflow) -> dict[str, Any]:
    return {
        "uuid": workflow.uuid,
        "organization_id": workflow.organization_id,
        "user_id": workflow.user_id,
        "name": workflow.name,
        "status": str(workflow.status),
        "definition": workflow.definition.to_dict(),
        "template_variables": workflow.template_variables,
        "created_at": workflow.created_at,
        "updated_at": workflow.updated_at,
    }


def workflow_from_row(row: WorkflowRow) -> Workflow:
    return Workflow(
        uuid=row.uuid,
        organization_id=row.organization_id,
        user_id=row.user_id,
        name=row.name,
        definition=AgentDefinition.from_dict(row.definition),
        status=WorkflowStatus(row.status),
        template_variables=row.template_variables,
        created_at=row.created_at,
        updated_at=row.updated_at,
        id=row.id,
    )


def telephony_config_values(config: TelephonyConfig, cipher: CredentialCipher) -> dict[str, Any]:
    """The row's values; the bearer token is stored encrypted (`cipher`), never in clear."""
    return {
        "organization_id": config.organization_id,
        "provider": str(config.provider),
        "domain_id": config.domain_id,
        "name": config.name,
        "bearer_token": cipher.encrypt(config.bearer_token.reveal()),
    }


def telephony_config_from_row(row: TelephonyConfigRow, cipher: CredentialCipher) -> TelephonyConfig:
    return TelephonyConfig(
        organization_id=row.organization_id,
        provider=Provider(row.provider),
        domain_id=row.domain_id,
        bearer_token=SecretStr(cipher.decrypt(row.bearer_token)),
        name=row.name,
        id=row.id,
    )


def workflow_run_values(run: WorkflowRun) -> dict[str, Any]:
    return {
        "name": run.name,
        "workflow_id": run.workflow_id,
        "agent_uuid": run.agent_uuid,
        "state": str(run.state),
        "call_type": run.call_type,
        "mode": run.mode,
        "initial_context": run.initial_context,
        "gathered_context": run.gathered_context,
        "logs": run.logs,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "duration_seconds": run.duration_seconds,
        "end_reason": run.end_reason,
        "close_code": run.close_code,
        "close_reason": run.close_reason,
        "instance_id": run.instance_id,
        "disposition": run.disposition,
        "trace_id": run.trace_id,
        "recording": recording_value(run),
    }


def recording_value(run: WorkflowRun) -> dict[str, Any] | None:
    return run.recording.to_dict() if run.recording is not None else None


def workflow_run_from_row(row: WorkflowRunRow) -> WorkflowRun:
    return WorkflowRun(
        name=row.name,
        workflow_id=row.workflow_id,
        agent_uuid=row.agent_uuid,
        mode=row.mode,
        created_at=row.created_at,
        call_type=row.call_type,
        state=RunState(row.state),
        initial_context=row.initial_context,
        gathered_context=row.gathered_context,
        logs=row.logs,
        started_at=row.started_at,
        ended_at=row.ended_at,
        duration_seconds=row.duration_seconds,
        end_reason=row.end_reason,
        close_code=row.close_code,
        close_reason=row.close_reason,
        instance_id=row.instance_id,
        disposition=row.disposition,
        trace_id=row.trace_id,
        recording=RunRecording.from_dict(row.recording),
        id=row.id,
    )


def end_values(run: WorkflowRun) -> dict[str, Any]:
    """The columns that say how a run ended."""
    return {
        "state": str(run.state),
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "duration_seconds": run.duration_seconds,
        "end_reason": run.end_reason,
        "close_code": run.close_code,
        "close_reason": run.close_reason,
        "disposition": run.disposition,
    }
