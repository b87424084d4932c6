"""The lookup guard: repeated failed look-ups from one address are refused for a while."""

from domain.lookup_guard import LookupFailureWindow


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
