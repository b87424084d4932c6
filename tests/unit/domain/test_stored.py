from datetime import UTC, datetime
from uuid import uuid4

import pytest

from domain.agents import Organization, User, Workflow
from domain.stored import NotStoredError
from domain.telephony import TelephonyConfig
from domain.workflow_run import WorkflowRun


def test_a_stored_entity_gives_its_id_and_an_unsaved_one_says_so():
    unsaved = [
        Organization(name="acme"),
        User(organization_id=1),
        Workflow(uuid=uuid4(), organization_id=1, user_id=1, name="agent"),
        WorkflowRun(
            name="run", workflow_id=1, agent_uuid=uuid4(), mode="cloudonix", created_at=datetime.now(UTC)
        ),
        TelephonyConfig.cloudonix(1, "acme", "token"),
    ]
    for entity in unsaved:
        with pytest.raises(NotStoredError, match=f"this {type(entity).__name__} has no id"):
            _ = entity.stored_id
        entity.id = 7
        assert entity.stored_id == 7
