"""Trend periods for the dashboard: buckets of days, weeks or months, and counts over time.

Pure: dates in, numbers out. The database hands over per-day sums and status timelines; these
functions fold them into the chosen period's buckets.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class Period:
    key: str
    label: str
    unit: str  # day | week | month
    count: int


PERIODS = {p.key: p for p in (Period("30d", "Last 30 days", "day", 30),
                              Period("90d", "Last 13 weeks", "week", 13),
                              Period("12m", "Last 12 months", "month", 12))}
DEFAULT_PERIOD = "30d"


def period_of(key: str) -> Period:
    return PERIODS.get(key) or PERIODS[DEFAULT_PERIOD]


def bucket_start(day: date, unit: str) -> date:
    if unit == "week":
        return day - timedelta(days=day.weekday())  # Monday
    if unit == "month":
        return day.replace(day=1)
    return day


def bucket_starts(period: Period, today: date) -> list[date]:
    """The first day of each bucket, oldest first; the last bucket holds `today`."""
    last = bucket_start(today, period.unit)
    starts = [last]
    for _ in range(period.count - 1):
        starts.append(_previous(starts[-1], period.unit))
    return starts[::-1]


def _previous(start: date, unit: str) -> date:
    if unit == "week":
        return start - timedelta(days=7)
    if unit == "month":
        return (start - timedelta(days=1)).replace(day=1)
    return start - timedelta(days=1)


def label(start: date, unit: str) -> str:
    """Month names, never month numbers: "Mar 2026" for a month, "Mar 02" for a day or week."""
    return start.strftime("%b %Y") if unit == "month" else start.strftime("%b %d")


def month_name(month: str) -> str:
    """ "2026-03" -> "Mar 2026"; anything else is returned as it is."""
    try:
        return label(date.fromisoformat(f"{month}-01"), "month")
    except ValueError:
        return month


def fold(daily: Iterable[tuple[date, int]], period: Period, today: date) -> list[tuple[str, int]]:
    """Per-day sums folded into the period's buckets; days outside the period are dropped."""
    starts = bucket_starts(period, today)
    totals = [0] * len(starts)
    for day, value in daily:
        if starts[0] <= day <= today:
            totals[bisect_right(starts, day) - 1] += int(value)
    return [(label(s, period.unit), t) for s, t in zip(starts, totals, strict=True)]


def sample_days(period: Period, today: date) -> list[date]:
    """The last day of each bucket (today for the current one): when "active" is measured."""
    starts = bucket_starts(period, today)
    return [s - timedelta(days=1) for s in starts[1:]] + [today]


def counts_over_time(timelines: Iterable[Sequence[tuple[date, str]]], statuses: set[str],
                     days: Sequence[date]) -> list[int]:
    """How many timelines were in one of `statuses` at the end of each of `days`.

    A timeline is one customer's (day, status) changes, oldest first; the last change of a day
    wins. Each span adds one to the sample days it covers, via a difference array."""
    diff = [0] * (len(days) + 1)
    for timeline in timelines:
        for status, start, end in _spans(timeline):
            if status in statuses:
                first = bisect_left(days, start)
                stop = bisect_left(days, end) if end is not None else len(days)
                if first < stop:
                    diff[first] += 1
                    diff[stop] -= 1
    counts, running = [], 0
    for step in diff[:-1]:
        running += step
        counts.append(running)
    return counts


def _spans(timeline: Sequence[tuple[date, str]]) -> list[tuple[str, date, date | None]]:
    spans: list[tuple[str, date, date | None]] = []
    for day, status in timeline:
        if spans and spans[-1][1] == day:
            spans[-1] = (status, day, None)  # a later change the same day replaces it
            continue
        if spans:
            spans[-1] = (spans[-1][0], spans[-1][1], day)
        spans.append((status, day, None))
    return spans
