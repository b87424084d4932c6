"""Property-based run of schemathesis against the served app's own OpenAPI document (`/schema`).

Every operation gets a bounded number of generated requests, valid ones and invalid ones, sent
with a valid API key. Each answer must be no 5xx, carry a documented status, content type and
headers, match the documented schema, and refuse what the schema rules out (schemathesis's
default checks). One check is left out: `positive_data_acceptance`, which wants every
schema-valid request accepted, while the API answers 422 for values a JSON schema does not
express (a definition's unknown engine, text holding NUL characters, a domain or transfer
destination that is no domain name, E.164 number or SIP URI), as interfaces.md requires.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import positive_data_acceptance

from tests.e2e.conftest import TenantFactory

EXAMPLES_PER_OPERATION = 4  # x 2 modes x 14 operations: about a hundred requests


def _exercise(operation: APIOperation, mode: GenerationMode, base_url: str, headers: dict[str, str]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Case) -> None:
        case.call_and_validate(
            base_url=base_url, headers=headers, timeout=10, excluded_checks=[positive_data_acceptance]
        )

    run()


def _has_inputs(operation: APIOperation) -> bool:
    return any(
        len(group) for group in (operation.path_parameters, operation.query, operation.headers)
    ) or bool(list(operation.body))


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
async def test_the_api_keeps_its_openapi_document(app_url: str, tenants: TenantFactory, mode: GenerationMode):
    tenant = await tenants.create()
    schema = (
        schemathesis.openapi.from_url(f"{app_url}/schema")
        .exclude(
            path="/ready"
        )  # answers 503 when the database is down: documented, not what this run is about
        .exclude(path="/api/v1/runs/events")  # a stream that stays open (test_run_events.py)
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= {
        "POST /api/v1/agents",
        "PATCH /api/v1/agents/{agent_uuid}",
        "GET /api/v1/agents/{agent_uuid}/runs",
        "POST /api/v1/telephony-configurations",
        "DELETE /api/v1/telephony-configurations/{config_id}",
        "POST /api/v1/runs/{run_id}/transfer",
        "POST /api/v1/telephony/cloudonix/transfer-result/{transfer_id}",
    }

    failures: list[str] = []
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not _has_inputs(operation):
            continue  # nothing to make invalid
        try:  # the app serves from its own thread: blocking this loop while hypothesis runs is fine
            _exercise(operation, mode, app_url, tenant.auth)
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure, report them together
            failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:2000]}")

    assert not failures, "\n\n".join(failures)
