"""callpage rules, from the CallPage seed: 25% of each payment in the first 12 months."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.program_rules import drafts, history, monthly, payment, program, referral, utc

FIRST = utc(2025, 1, 20, 10)
PAYMENTS = monthly(FIRST, 14, 4900)


@pytest.mark.parametrize("number, expected", [
    (1, 1225),    # the upgrade: first paid payment
    (2, 1225),
    (12, 1225),   # month 12 earns
    (13, 0),      # month 13 earns nothing
    (14, 0),
])
def test_25_percent_in_the_first_12_months_only(number, expected):
    prog = program("callpage")
    got = drafts(prog, "commissions_for_payment", payment=PAYMENTS[number - 1],
                 referral=referral(), history=history(PAYMENTS))
    assert sum(d.amount for d in got) == expected
    if expected:
        assert got[0].earned_at == PAYMENTS[number - 1].occurred_at
        assert got[0].key == f"pay:stripe:in_{number}"


@pytest.mark.parametrize("amount, expected", [(4900, 1225), (3333, 833), (2, 1), (1, 0)])
def test_rounding_is_half_up_once_per_line(amount, expected):
    p = payment("in_r", FIRST, amount)
    got = drafts(program("callpage"), "commissions_for_payment", payment=p, referral=referral(),
                 history=history([p]))
    assert sum(d.amount for d in got) == expected


def test_an_upgrade_mid_cycle_inside_the_window_earns_and_one_a_day_late_does_not():
    first = payment("in_1", FIRST, 4900)
    inside = payment("in_up", utc(2026, 1, 20, 9, 59), 2000)
    outside = payment("in_late", utc(2026, 1, 20, 10), 2000)
    h = history([first, inside, outside])
    prog = program("callpage")
    assert [d.amount for d in drafts(prog, "commissions_for_payment", payment=inside,
                                     referral=referral(), history=h)] == [500]
    assert drafts(prog, "commissions_for_payment", payment=outside, referral=referral(),
                  history=h) == []


def test_other_numbers_from_config():
    prog = program("callpage", rate="0.10", months=3)
    assert prog.settings.rate == Decimal("0.10")
    results = [sum(d.amount for d in drafts(prog, "commissions_for_payment", payment=p,
                                            referral=referral(), history=history(PAYMENTS)))
               for p in PAYMENTS[:5]]
    assert results == [490, 490, 490, 0, 0]


def test_withdrawal_is_a_manual_request_from_50():
    from tests.program_rules import call

    policy = call(program("callpage"), "payout_policy", partner_kind="partner")
    assert (policy.mode, policy.minimum, policy.methods) == ("request", 5000, ("manual",))
