"""crazycall rules, from the CrazyCall seed: 20% of every payment, with no end."""

from __future__ import annotations

import pytest

from tests.program_rules import call, drafts, history, monthly, payment, program, referral, utc

RENEWALS = monthly(utc(2025, 1, 24), 40, 3000)


@pytest.mark.parametrize("p, expected", [
    (payment("in_first", utc(2025, 1, 24), 3000), 600),             # first subscription payment
    (RENEWALS[11], 600),                                             # a renewal, month 12
    (RENEWALS[39], 600),                                             # month 40: no end
    (payment("in_prorate", utc(2025, 6, 9, 14), 3333), 667),        # upgrade mid-cycle: proration
    (payment("in_seats", utc(2025, 9, 3), 1250), 250),              # added seats
    (payment("in_eur", utc(2025, 9, 3), 4999, "EUR"), 1000),        # in the payment's currency
])
def test_20_percent_of_every_payment(p, expected):
    got = drafts(program("crazycall"), "commissions_for_payment", payment=p, referral=referral(),
                 history=history(RENEWALS + [p]))
    assert [(d.amount, d.currency) for d in got] == [(expected, p.currency)]
    assert got[0].earned_at == p.occurred_at


def test_withdrawal_on_request_from_50_dollars_one_pending_at_a_time():
    policy = call(program("crazycall"), "payout_policy", partner_kind="partner")
    assert (policy.mode, policy.minimum, policy.one_pending) == ("request", 5000, True)
    assert program("crazycall").settings.trial_days == (14, 30)
    assert program("crazycall").settings.cookie_days == 90
