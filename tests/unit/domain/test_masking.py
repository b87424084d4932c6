"""Phone numbers in logs: all but the last four digits masked."""

from domain.masking import mask_phone


def test_phone_masking_keeps_last_four():
    assert mask_phone("+15555550100") == "***0100"
    assert mask_phone("123") == "***"
    assert mask_phone(None) is None
