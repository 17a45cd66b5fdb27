"""The core's time helpers that programs share: month windows, good standing, monthly counts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub.programs import (
    TickContext,
    add_months,
    good_standing_reached,
    month_bounds,
    within_months_of_first_payment,
)
from tests.program_rules import history, payment, spans, utc


@pytest.mark.parametrize("start, months, expected", [
    (utc(2025, 1, 15, 9), 12, utc(2026, 1, 15, 9)),
    (utc(2025, 1, 31), 1, utc(2025, 2, 28)),       # clamped to the month's last day
    (utc(2024, 1, 31), 1, utc(2024, 2, 29)),       # leap year
    (utc(2025, 11, 30), 3, utc(2026, 2, 28)),
    (utc(2025, 12, 1), 0, utc(2025, 12, 1)),
])
def test_add_months(start, months, expected):
    assert add_months(start, months) == expected


FIRST = utc(2025, 1, 15, 9)


@pytest.mark.parametrize("at, inside", [
    (FIRST, True),                                              # the first payment itself
    (utc(2025, 12, 15, 9), True),                               # payment 12
    (utc(2026, 1, 15, 8, 59, 59), True),                        # one second before the end
    (utc(2026, 1, 15, 9), False),                               # payment 13: exactly 12 months
    (utc(2026, 3, 1), False),
])
def test_first_months_window_both_sides_of_the_boundary(at, inside):
    first = payment("in_1", FIRST, 1000)
    later = payment("in_x", at, 1000)
    h = history([first, later] if at != FIRST else [first])
    assert within_months_of_first_payment(h, later, 12) is inside


def test_window_counts_from_the_earliest_known_payment_whatever_the_order():
    # The payment asked about may be earlier than anything in a partial history.
    h = history([payment("in_13", utc(2026, 1, 15, 9), 1000)])
    early = payment("in_1", FIRST, 1000)
    assert within_months_of_first_payment(h, early, 12)


def test_good_standing_accumulates_across_a_past_due_gap_and_ignores_cancelled_time():
    timeline = spans(("trial", utc(2025, 1, 1)), ("active", utc(2025, 1, 15)),
                     ("past_due", utc(2025, 2, 1)), ("active", utc(2025, 2, 11)))
    assert good_standing_reached(timeline, timedelta(days=90)) == utc(2025, 4, 11)
    cancelled = spans(("active", utc(2025, 1, 1)), ("cancelled", utc(2025, 3, 1)))
    assert good_standing_reached(cancelled, timedelta(days=90)) is None


def test_active_referrals_in_a_month_counts_any_good_standing_overlap():
    during = spans(("active", utc(2025, 3, 1)), ("cancelled", utc(2025, 4, 2)))
    before = spans(("active", utc(2025, 1, 1)), ("cancelled", utc(2025, 3, 31, 23)))
    past_due_all_month = spans(("active", utc(2025, 1, 1)), ("past_due", utc(2025, 3, 20)),
                               ("active", utc(2025, 5, 1)))
    later = spans(("trial", utc(2025, 4, 30, 23)),)
    tick = TickContext(now=utc(2025, 5, 1), referral_statuses=(during, before, past_due_all_month,
                                                               later))
    assert tick.active_referrals_in(utc(2025, 4, 15)) == 2
    assert tick.active_referrals_in(utc(2025, 3, 1)) == 3
    assert tick.active_referrals_in(utc(2025, 5, 31)) == 2
    assert month_bounds(utc(2025, 12, 9, 13)) == (utc(2025, 12, 1), utc(2026, 1, 1))


def test_plan_at_a_moment_is_the_plan_then_not_the_latest():
    h = history(plans=((utc(2025, 1, 1), "performance"), (utc(2025, 5, 1), "connect")))
    assert h.plan_at(utc(2025, 4, 30)) == "performance"
    assert h.plan_at(utc(2025, 5, 1)) == "connect"
    assert h.plan_at(utc(2024, 12, 31)) == "performance"   # named only later: the first known
