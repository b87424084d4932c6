from datetime import UTC, datetime

import pytest

from domain.agents import AgentDefinition, InvalidDefinitionError, month_start, quota_allows, slot_available
from domain.lookup_guard import LookupFailureWindow
from domain.masking import mask_phone


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


def test_lookup_guard_blocks_after_limit_then_cools_down():
    guard = LookupFailureWindow(limit=3, window_seconds=60)
    for t in (0, 1, 2):
        assert not guard.blocked("1.2.3.4", t)
        guard.record_failure("1.2.3.4", t)
    assert guard.blocked("1.2.3.4", 3)
    assert not guard.blocked("5.6.7.8", 3)
    assert not guard.blocked("1.2.3.4", 61)


def test_lookup_guard_off_at_zero():
    guard = LookupFailureWindow(limit=0)
    for t in range(100):
        guard.record_failure("a", t)
    assert not guard.blocked("a", 100)


def test_phone_masking_keeps_last_four():
    assert mask_phone("+15555550100") == "***0100"
    assert mask_phone("123") == "***"
    assert mask_phone(None) is None
