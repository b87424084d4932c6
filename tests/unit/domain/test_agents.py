"""Agents: the quota and concurrency decisions, the month boundary, the definition's round trip."""

from datetime import UTC, datetime

import pytest

from domain.agents import AgentDefinition, InvalidDefinitionError, month_start, quota_allows, slot_available


def test_quota_and_slot_decisions():
    assert quota_allows(1, 59.9)
    assert not quota_allows(1, 60)
    assert not quota_allows(0, 0)
    assert slot_available(9, 10)
    assert not slot_available(10, 10)


def test_month_start():
    assert month_start(datetime(2026, 11, 25, 3, 4, 5, tzinfo=UTC)) == datetime(2026, 11, 1, tzinfo=UTC)


def test_definition_round_trip_and_validation():
    raw = {
        "engine": "linetest",
        "greeting": "hi",
        "transfer_destination": "+15555550123",
        "max_call_seconds": 30,
        "extra": {"a": 1},
    }
    assert AgentDefinition.from_dict(raw).to_dict() == raw
    with pytest.raises(InvalidDefinitionError) as info:
        AgentDefinition.from_dict({"engine": "nope"})
    assert info.value.field == "engine"
    with pytest.raises(InvalidDefinitionError) as info:
        AgentDefinition.from_dict({"max_call_seconds": -5})
    assert info.value.field == "max_call_seconds"
