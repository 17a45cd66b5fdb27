"""Time helpers: the hub stores aware UTC datetimes only."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def from_timestamp(seconds: int | float) -> datetime:
    """Unix seconds to aware UTC; ValueError (not OSError/OverflowError) when out of range."""
    try:
        return datetime.fromtimestamp(int(seconds), UTC)
    except (OverflowError, OSError):
        raise ValueError(f"timestamp out of range: {seconds!r}") from None


def parse_instant(text: str) -> datetime:
    """ISO-8601 to aware UTC; a date or a naive time is taken as UTC."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
