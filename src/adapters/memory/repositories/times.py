"""Datetimes as a database column keeps them: timezone-aware ones only, handed back in UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from application.ports.repositories import StorageError


def utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise StorageError("datetimes must be timezone-aware")
    return value.astimezone(UTC)


def utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)
