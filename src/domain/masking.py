"""Masking of personal data for logs: phone numbers keep their last four digits."""

from __future__ import annotations


def mask_phone(number: str | None) -> str | None:
    if number is None:
        return None
    digits = [c for c in number if c.isdigit()]
    if len(digits) <= 4:
        return "*" * len(number)
    return "***" + "".join(digits[-4:])
