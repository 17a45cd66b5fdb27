"""callbell rules, from the Callbell Rewards seed: €10 per new installation by a referred account
(once per account and site) plus 30% of every license payment; every customer refers."""

from __future__ import annotations

import pytest

from hub.programs import Install
from tests.program_rules import call, drafts, history, payment, program, referral, utc


def install(site: str | None, product: str = "widget", install_id: str = "inst-1") -> Install:
    return Install(install_id=install_id, product=product, site=site, customer_ref="cus_1",
                   occurred_at=utc(2025, 2, 3))


@pytest.mark.parametrize("inst, expected_key", [
    (install("https://www.s-shop.test/contact"), "install:cus_1:s-shop.test"),
    (install("s-shop.test"), "install:cus_1:s-shop.test"),            # same site, same key
    (install("HTTPS://S-Shop.test"), "install:cus_1:s-shop.test"),
    (install("blog.s-shop.test"), "install:cus_1:blog.s-shop.test"),  # another site
    (install(None), "install:cus_1:"),
])
def test_install_earns_10_euro_once_per_account_and_site(inst, expected_key):
    got = drafts(program("callbell"), "commissions_for_install", install=inst,
                 referral=referral("ambassador"), history=history())
    assert [(d.key, d.amount, d.currency) for d in got] == [(expected_key, 1000, "EUR")]


def test_other_products_are_not_widget_installations():
    assert drafts(program("callbell"), "commissions_for_install", install=install("a.test", "odoo"),
                  referral=referral("ambassador"), history=history()) == []
    anything = program("callbell", install_products=[])
    assert len(drafts(anything, "commissions_for_install", install=install("a.test", "odoo"),
                      referral=referral("ambassador"), history=history())) == 1


@pytest.mark.parametrize("amount, expected", [(2000, 600), (4900, 1470), (1999, 600), (3, 1)])
def test_install_plus_first_license_payment(amount, expected):
    prog = program("callbell")
    first = payment("in_1", utc(2025, 2, 3, 12), amount, "EUR")
    earned = drafts(prog, "commissions_for_install", install=install("s.test"),
                    referral=referral("ambassador"), history=history([first]))
    earned += drafts(prog, "commissions_for_payment", payment=first,
                     referral=referral("ambassador"), history=history([first]))
    assert [d.amount for d in earned] == [1000, expected]


def test_every_customer_is_an_ambassador_and_pays_out_on_request_by_a_chosen_method():
    prog = program("callbell")
    assert call(prog, "auto_enroll_kind") == "ambassador"
    assert prog.kinds == ("ambassador",)
    policy = call(prog, "payout_policy", partner_kind="ambassador")
    assert (policy.mode, policy.minimum) == ("request", 5000)
    assert set(policy.methods) == {"paypal", "bank_transfer"}
