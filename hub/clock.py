"""Time helpers: the hub stores aware UTC datetimes only."""

from __future__ import annotations

from datetime import UTC, date, datetime

# The days a date range asked for in a query is clamped to: nothing the hub holds is older than
# the epoch, and a far-future `to` (9999-12-31) must still leave room for "the day after" and
# "30 days before" arithmetic without an OverflowError.
EARLIEST_DAY = date(1970, 1, 1)
LATEST_DAY = date(9000, 12, 31)


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


def clamp_day(day: date) -> date:
    """`day` within EARLIEST_DAY..LATEST_DAY."""
    return min(max(day, EARLIEST_DAY), LATEST_DAY)
