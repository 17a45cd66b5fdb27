"""calltrackingmetrics rules, from the CTM seed: a one-time bounty in the month an account first
crosses 90 days active, tiered by plan and by the affiliate's active referrals that month."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub.programs import TickContext
from tests.program_rules import call, drafts, history, program, referral, spans, utc

START = utc(2025, 1, 10, 8)          # active from here: crosses 90 days on 2025-04-10 08:00
CROSSED = START + timedelta(days=90)
AFTER_APRIL = utc(2025, 5, 1)


def others(count: int) -> tuple:
    """`count` other referral accounts of the partner, active all through April 2025."""
    return tuple(spans(("active", utc(2025, 3, 1))) for _ in range(count))


def bounty(plan: str, active_others: int, now=AFTER_APRIL, timeline=None, **settings):
    prog = program("calltrackingmetrics", **settings)
    timeline = timeline or spans(("active", START))
    tick = TickContext(now=now, referral_statuses=(timeline,) + others(active_others))
    return drafts(prog, "commissions_for_tick", referral=referral("affiliate"),
                  history=history(statuses=timeline, plans=((START, plan),)), tick=tick)


@pytest.mark.parametrize("plan, with_24, with_25", [
    ("performance", 3900, 5900),
    ("growth", 9900, 14900),
    ("connect", 29900, 44900),
    ("Growth", 9900, 14900),     # the provider's plan name in any case
])
def test_bounty_by_plan_under_and_at_25_active_referrals(plan, with_24, with_25):
    # The account itself is one of the partner's active referrals that month.
    for total, expected in ((24, with_24), (25, with_25)):
        got = bounty(plan, total - 1)
        assert [(d.amount, d.currency, d.earned_at) for d in got] == [(expected, "USD", CROSSED)]
        assert got[0].key == "bounty:cus_1"
        assert got[0].inputs["active_referrals"] == total


@pytest.mark.parametrize("now, booked", [
    (CROSSED - timedelta(seconds=1), False),   # not yet 90 days
    (CROSSED, False),                          # crossed, but April is still open
    (utc(2025, 4, 30, 23, 59), False),
    (AFTER_APRIL, True),                       # April closed: the count is final
    (utc(2025, 9, 1), True),                   # a late tick books the same line (same key)
])
def test_bounty_is_booked_once_its_month_has_closed(now, booked):
    assert bool(bounty("growth", 0, now=now)) is booked


def test_a_later_tick_computes_the_same_line():
    assert bounty("growth", 30, now=AFTER_APRIL) == bounty("growth", 30, now=utc(2026, 1, 1))


def test_unpaid_invoice_pauses_the_clock_and_cancellation_before_90_days_earns_nothing():
    gap = spans(("active", START), ("past_due", utc(2025, 2, 1, 8)),
                ("active", utc(2025, 2, 11, 8)))
    got = bounty("performance", 0, now=utc(2025, 6, 1), timeline=gap)
    assert got[0].earned_at == CROSSED + timedelta(days=10)
    cancelled = spans(("active", START), ("cancelled", utc(2025, 4, 1)))
    assert bounty("performance", 0, now=utc(2026, 1, 1), timeline=cancelled) == []


def test_trial_time_counts_as_active():
    timeline = spans(("trial", START), ("active", START + timedelta(days=14)))
    assert bounty("performance", 0, timeline=timeline)[0].earned_at == CROSSED


def test_the_plan_at_the_90_day_mark_decides_not_a_later_upgrade():
    prog = program("calltrackingmetrics")
    timeline = spans(("active", START))
    plans = ((START, "performance"), (utc(2025, 4, 20), "connect"))
    tick = TickContext(now=AFTER_APRIL, referral_statuses=(timeline,))
    got = drafts(prog, "commissions_for_tick", referral=referral("affiliate"),
                 history=history(statuses=timeline, plans=plans), tick=tick)
    assert [d.amount for d in got] == [3900]


def test_unknown_plan_earns_nothing_and_aliases_map_provider_plans():
    assert bounty("enterprise-custom", 0) == []
    got = bounty("ctm_growth_monthly", 0, plan_aliases={"ctm_growth_monthly": "growth"})
    assert [d.amount for d in got] == [9900]


def test_other_numbers_from_config():
    # Crossing in February, when only this account is active (the others start in March).
    settings = dict(active_days=30, bounties={"performance": [1000, 2000]})
    got = bounty("performance", 9, tier_threshold=1, **settings)
    assert [(d.amount, d.earned_at) for d in got] == [(2000, START + timedelta(days=30))]
    assert [d.amount for d in bounty("performance", 9, tier_threshold=2, **settings)] == [1000]


def test_application_approval_agreement_and_monthly_payout():
    prog = program("calltrackingmetrics")
    assert call(prog, "new_partner_status", partner_kind="affiliate", invited=False) == "applied"
    assert [r for answer in call(prog, "link_requirements") for r in answer] == ["agreement"]
    assert call(prog, "payout_policy", partner_kind="affiliate").mode == "monthly"
