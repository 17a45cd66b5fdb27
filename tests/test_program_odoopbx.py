"""odoopbx rules, from the OdooPBX seed: partners (invited, 30%, whole subscription) and
referrals (self sign-up, 15%, 12 months from the first payment), with what each may see."""

from __future__ import annotations

import pytest

from tests.program_rules import call, drafts, history, monthly, program, referral, utc

PAYMENTS = monthly(utc(2023, 3, 5, 6), 36, 10000, "EUR")


@pytest.mark.parametrize("kind, number, expected", [
    ("referral", 1, 1500),
    ("referral", 12, 1500),
    ("referral", 13, 0),          # a referral's month 13 earns nothing
    ("partner", 1, 3000),
    ("partner", 13, 3000),
    ("partner", 30, 3000),        # a partner's customer in month 30 still earns
])
def test_commission_by_kind_and_month(kind, number, expected):
    got = drafts(program("odoopbx"), "commissions_for_payment", payment=PAYMENTS[number - 1],
                 referral=referral(kind), history=history(PAYMENTS))
    assert sum(d.amount for d in got) == expected
    assert all(d.currency == "EUR" for d in got)


def test_other_rates_and_window_from_config():
    prog = program("odoopbx", partner_rate="0.25", referral_rate="0.1", referral_months=24)
    amounts = [sum(d.amount for d in drafts(prog, "commissions_for_payment", payment=PAYMENTS[n],
                                            referral=referral(kind), history=history(PAYMENTS)))
               for kind, n in (("referral", 23), ("referral", 24), ("partner", 35))]
    assert amounts == [1000, 0, 2500]


@pytest.mark.parametrize("kind, names, directory, support, minimum", [
    ("partner", True, True, True, 20000),
    ("referral", False, False, False, 10000),
])
def test_what_each_kind_sees_and_how_it_is_paid(kind, names, directory, support, minimum):
    prog = program("odoopbx")
    profile = call(prog, "partner_kind_profile", partner_kind=kind)
    assert (profile.sees_customer_names, profile.listed_in_directory,
            profile.receives_support) == (names, directory, support)
    policy = call(prog, "payout_policy", partner_kind=kind)
    assert (policy.mode, policy.minimum, policy.every_months) == ("automatic", minimum, 3)


@pytest.mark.parametrize("kind, invited, status", [
    ("partner", False, "applied"), ("partner", True, "active"),
    ("referral", False, "active"),
])
def test_partners_join_by_invitation_referrals_sign_up(kind, invited, status):
    assert call(program("odoopbx"), "new_partner_status", partner_kind=kind,
                invited=invited) == status
    assert program("odoopbx").kinds == ("partner", "referral")
