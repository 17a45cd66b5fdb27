"""A year of each program: partners, events in business time, and the balances they must end
with, worked out by hand from PROGRAMS.md (the comments show the arithmetic).

Each scenario is data so that the live run (webhooks + daily ticks) and the replay run
(`hub replay` of the same events, shuffled, with duplicates) share it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hub.attribution.partners import derived_code
from tests.conftest import operator_headers
from tests.program_rules import utc
from tests.scenario_runner import Scenario
from tests.stripe_helpers import create_partner

# code -> (pending, payable, in_payout, paid, voided)
Balances = dict[str, tuple[int, int, int, int, int]]


@dataclass
class Plan:
    program: str
    currency: str
    start: datetime
    end: datetime
    setup: Callable[[Any], None]                  # creates the partners through the API
    events: Callable[[Scenario], None]
    expected: Balances
    config: dict[str, Any] = field(default_factory=dict)

    def scenario(self) -> Scenario:
        sc = Scenario(self.program)
        self.events(sc)
        return sc


def _post(client: Any, path: str) -> None:
    response = client.post(path, headers=operator_headers())
    assert response.status_code == 200, response.text


# --- callpage: 25% of each payment in the first 12 months from the first paid one -------------

def callpage_setup(client: Any) -> None:
    create_partner(client, "callpage", code="cp-ann", email="ann@partners.test")


def callpage_events(sc: Scenario) -> None:
    sc.customer(utc(2025, 1, 2, 9), "cus_cpA", "a@client.test", code="cp-ann")
    sc.subscription(utc(2025, 1, 2, 9), "created", "sub_cus_cpA", "cus_cpA", "trialing", "basic")
    for month in range(13):  # payments 1..13 on the 15th; payment 13 is 2026-01-15
        at = utc(2025 + (month // 12), month % 12 + 1, 15, 10)
        sc.paid(at, f"in_cpA_{month + 1}", "cus_cpA", 4900, plan="basic")
    sc.refund(utc(2025, 3, 20), "in_cpA_3", 4900, 2450)      # half of payment 3 refunded
    sc.customer(utc(2025, 6, 1), "cus_cpB", "b@client.test", code="cp-ann")
    for month in range(8):  # 2025-06-10 .. 2026-01-10
        at = utc(2025 + (month + 5) // 12, (month + 5) % 12 + 1, 10, 12)
        sc.paid(at, f"in_cpB_{month + 1}", "cus_cpB", 9900)
    sc.dispute(utc(2025, 9, 1), "in_cpB_2", 9900)            # July's, after its release
    sc.customer(utc(2025, 2, 1), "cus_cpSelf", "ANN@partners.test", code="cp-ann")
    sc.paid(utc(2025, 2, 1, 1), "in_cpSelf_1", "cus_cpSelf", 4900)
    sc.paid(utc(2025, 4, 1), "in_cpD_1", "cus_cpD", 4900)    # nobody referred D


CALLPAGE = Plan(
    program="callpage", currency="USD", start=utc(2025, 1, 1), end=utc(2026, 1, 16),
    setup=callpage_setup, events=callpage_events,
    # A: 12 x 25% of $49 = 12 x 1225 = 14700; payment 13 nothing; refund 50% of payment 3:
    #    1225 * 2450/4900 = 612.5 -> 613 voided.
    # B: 25% of $99 = 2475; 7 payments in 2025 released, 2026-01-10 still held (pending 2475);
    #    July's disputed: 2475 voided. Self-referral and unreferred: nothing.
    # payable = 14700 - 613 + 7 * 2475 - 2475 = 28937
    expected={"cp-ann": (2475, 28937, 0, 0, 613 + 2475)},
)


# --- crazycall: 20% of every payment, no end ---------------------------------------------------

def crazycall_setup(client: Any) -> None:
    create_partner(client, "crazycall", code="cc-bob", email="bob@partners.test")


def crazycall_events(sc: Scenario) -> None:
    from connectors import stripe_trigger as st

    sc.customer(utc(2025, 1, 10), "cus_ccA", "a@crazy.test", code="cc-bob")
    sc.subscription(utc(2025, 1, 10), "created", "sub_ccA", "cus_ccA", "trialing", "plan_a")
    for month in range(12):  # Jan 24 .. Dec 24; Plan A $30 until May, Plan B $50 from June
        amount, plan = (3000, "plan_a") if month < 5 else (5000, "plan_b")
        sc.paid(utc(2025, month + 1, 24, 6), f"in_ccA_{month + 1}", "cus_ccA", amount,
                sub="sub_ccA", plan=plan)
    sc.subscription(utc(2025, 6, 9, 14), "updated", "sub_ccA", "cus_ccA", "active", "plan_b")
    sc.paid(utc(2025, 6, 9, 14), "in_ccA_prorate", "cus_ccA", 3333, sub="sub_ccA", plan="plan_b")
    sc.paid(utc(2025, 9, 3), "in_ccA_seats", "cus_ccA", 1250, sub="sub_ccA", plan="plan_b")
    sc.refund(utc(2025, 10, 30), "in_ccA_10", 5000, 5000)
    sc.stripe(utc(2025, 11, 20), "checkout.session.completed", st.checkout_completed(
        "cs_ccB", customer_id="cus_ccB", client_reference_id="cc-bob", email="b@crazy.test"))
    sc.paid(utc(2025, 11, 20, 1), "in_ccB_1", "cus_ccB", 3000)
    sc.paid(utc(2025, 12, 20, 1), "in_ccB_2", "cus_ccB", 3000)


CRAZYCALL = Plan(
    program="crazycall", currency="USD", start=utc(2025, 1, 1), end=utc(2026, 1, 1),
    setup=crazycall_setup, events=crazycall_events,
    # A: 5 x 600 (Plan A) + 7 x 1000 (Plan B) + 667 (20% of the $33.33 proration, half-up)
    #    + 250 (added seats) = 10917; October's refunded in full: 1000 voided.
    # B (checkout): 2 x 600 = 1200.  Held at 2026-01-01: A's Dec 24 (1000), B's Dec 20 (600).
    # payable = 10917 + 1200 - 1000 - 1600 = 9517
    expected={"cc-bob": (1600, 9517, 0, 0, 1000)},
)


# --- callbell: every customer refers; €10 per install + 30% of licenses ------------------------

CB_R = derived_code("callbell:stripe:cus_cbR")


def callbell_setup(client: Any) -> None:
    """Nobody to create: customers become ambassadors by themselves."""


def callbell_events(sc: Scenario) -> None:
    sc.customer(utc(2025, 1, 5), "cus_cbR", "r@shop.test")            # R: an ambassador
    sc.paid(utc(2025, 1, 5, 1), "in_cbR_1", "cus_cbR", 2000, "eur")    # R's own: nobody earns
    sc.customer(utc(2025, 2, 1), "cus_cbS", "s@shop.test", code=CB_R)
    sc.install(utc(2025, 2, 3), install_id="cb-1", product="widget", customer_ref="cus_cbS",
               site="https://www.s-shop.test/")                         # 1000
    sc.install(utc(2025, 3, 1), install_id="cb-2", product="widget", customer_ref="cus_cbS",
               site="s-shop.test")                                      # same site: nothing
    sc.install(utc(2025, 4, 1), install_id="cb-3", product="widget", customer_ref="cus_cbS",
               site="blog.s-shop.test")                                 # 1000
    sc.install(utc(2025, 4, 2), install_id="cb-4", product="mobile-app", customer_ref="cus_cbS")
    for month in range(11):  # Feb 3 .. Dec 3, then cancelled
        sc.paid(utc(2025, month + 2, 3, 12), f"in_cbS_{month + 1}", "cus_cbS", 2000, "eur")
    sc.dispute(utc(2025, 8, 20), "in_cbS_7", 2000, "eur")             # August's: 600 voided
    sc.subscription(utc(2025, 12, 15), "deleted", "sub_cus_cbS", "cus_cbS", "canceled")
    from connectors import stripe_trigger as st

    sc.stripe(utc(2025, 6, 1), "checkout.session.completed", st.checkout_completed(
        "cs_cbT", customer_id="cus_cbT", client_reference_id=CB_R, email="t@shop.test"))
    sc.install(utc(2025, 6, 2), install_id="cb-5", product="widget", customer_ref="cus_cbT",
               site="t-shop.test")                                      # 1000
    sc.customer(utc(2025, 7, 1), "cus_cbU", "R@Shop.test", code=CB_R)  # R's other account
    sc.paid(utc(2025, 7, 2), "in_cbU_1", "cus_cbU", 2000, "eur")        # self-referral: nothing


CALLBELL = Plan(
    program="callbell", currency="EUR", start=utc(2025, 1, 1), end=utc(2026, 1, 1),
    setup=callbell_setup, events=callbell_events,
    # R: installs 3 x 1000 = 3000; S's 11 licenses x 30% of €20 = 11 x 600 = 6600; August's
    # disputed: 600 voided; held at 2026-01-01: Dec 3 (600). payable = 3000 + 6600 - 600 - 600
    expected={CB_R: (600, 8400, 0, 0, 600)},
)


# --- calltrackingmetrics: bounty at 90 days active, tier by the month's active referrals -------

def ctm_setup(client: Any) -> None:
    partner = create_partner(client, "calltrackingmetrics", code="ctm-x", email="x@aff.test")
    assert partner["status"] == "applied"
    _post(client, f"/api/v1/partners/{partner['id']}/approve")
    _post(client, f"/api/v1/partners/{partner['id']}/agreement")
    create_partner(client, "calltrackingmetrics", code="ctm-y", email="y@aff.test")  # applied


def _account(sc: Scenario, n: int, start: datetime, plan: str, code: str = "ctm-x") -> str:
    customer = f"cus_ctm{n}"
    sc.customer(start, customer, f"{n}@ctm-client.test", code=code)
    sc.subscription(start, "created", f"sub_ctm{n}", customer, "active", plan)
    return customer


def ctm_events(sc: Scenario) -> None:
    for n, plan in ((1, "performance"), (2, "growth"), (3, "connect")):
        _account(sc, n, utc(2025, 1, 10), plan)                      # cross 2025-04-10
    for n, plan in ((4, "performance"), (5, "performance"), (6, "connect")):
        _account(sc, n, utc(2025, 2, 10), plan)                      # cross 2025-05-11
    sc.subscription(utc(2025, 6, 1), "updated", "sub_ctm4", "cus_ctm4", "active", "connect")
    sc.subscription(utc(2025, 4, 1), "updated", "sub_ctm5", "cus_ctm5", "active", "growth")
    for n in range(7, 26):
        _account(sc, n, utc(2025, 3, 1), "performance")              # cross 2025-05-30
    sc.subscription(utc(2025, 3, 25), "deleted", "sub_ctm7", "cus_ctm7", "canceled")
    sc.stripe(utc(2025, 4, 1), "invoice.payment_failed", _unpaid("cus_ctm9", "sub_ctm9"))
    sc.paid(utc(2025, 4, 11), "in_ctm9", "cus_ctm9", 3900, sub="sub_ctm9", plan="performance")
    for n in range(20, 26):
        sc.subscription(utc(2025, 5, 31), "deleted", f"sub_ctm{n}", f"cus_ctm{n}", "canceled")
    sc.customer(utc(2025, 5, 5), "cus_ctm26", "26@ctm-client.test", code="ctm-x")
    sc.subscription(utc(2025, 5, 5), "created", "sub_ctm26", "cus_ctm26", "trialing", "growth")
    sc.subscription(utc(2025, 5, 19), "updated", "sub_ctm26", "cus_ctm26", "active", "growth")
    _account(sc, 27, utc(2025, 9, 21), "connect")                    # cross 2025-12-20
    _account(sc, 28, utc(2025, 1, 10), "connect", code="ctm-y")      # Y never approved


def _unpaid(customer: str, sub: str) -> dict[str, Any]:
    from connectors import stripe_trigger as st

    inv = st.invoice(f"in_unpaid_{customer}", customer_id=customer, amount=3900,
                     subscription_id=sub)
    return {**inv, "status": "open", "amount_paid": 0}


CTM = Plan(
    program="calltrackingmetrics", currency="USD", start=utc(2025, 1, 1), end=utc(2026, 1, 1),
    setup=ctm_setup, events=ctm_events,
    # April (24 active: 1-6 and 8-25; 7 cancelled in March): 3900 + 9900 + 29900 = 43700.
    # May (25: 26 joined): 4 at its mark still performance 5900, 5 upgraded before it 14900,
    #   6 connect 44900, 8 and 10-25 (17 accounts) performance 17 x 5900 = 100300 -> 166000.
    # June (19: 20-25 cancelled May 31): 9, whose unpaid invoice paused it 10 days, 3900.
    # August (19): 26 (trial counts) growth 9900.  December (20): 27 connect 29900, booked by
    # the 2026-01-01 tick (no hold for bounties) and payable, waiting for December's payout at
    # the end of January.  Y's account: nothing (never approved).
    # Through August = 43700 + 166000 + 3900 + 9900 = 223500, in the monthly payouts made at
    # the ends of May, June, July and September (PayPal dry-run keeps each reserved in_payout).
    expected={"ctm-x": (0, 29900, 223500, 0, 0), "ctm-y": (0, 0, 0, 0, 0)},
)


# --- odoopbx: partners 30% for the whole subscription, referrals 15% for 12 months -------------

def odoopbx_setup(client: Any) -> None:
    create_partner(client, "odoopbx", code="odoo-partner", email="p@integrator.test",
                   kind="partner", invited=True, paypal_email="p-pay@integrator.test")
    create_partner(client, "odoopbx", code="odoo-ref", email="r@hobby.test", kind="referral")
    applied = create_partner(client, "odoopbx", code="odoo-applied", email="q@integrator.test",
                             kind="partner")
    assert applied["status"] == "applied"


def odoopbx_events(sc: Scenario) -> None:
    sc.install(utc(2025, 1, 2), install_id="odoo-inst-A", partner_code="odoo-partner",
               product="odoopbx")
    sc.customer(utc(2025, 1, 3), "cus_odA", "a@odoo-client.test", install_id="odoo-inst-A")
    for month in range(12):  # €100 on the 5th, Jan .. Dec, then cancelled
        sc.paid(utc(2025, month + 1, 5, 7), f"in_odA_{month + 1}", "cus_odA", 10000, "eur")
    sc.subscription(utc(2025, 12, 20), "deleted", "sub_cus_odA", "cus_odA", "canceled")
    sc.customer(utc(2025, 1, 1), "cus_odB", "b@odoo-client.test", code="odoo-ref")
    for month in range(13):  # €50 on the 8th, 2025-01 .. 2026-01 (payment 13)
        at = utc(2025 + month // 12, month % 12 + 1, 8, 7)
        sc.paid(at, f"in_odB_{month + 1}", "cus_odB", 5000, "eur")
    sc.customer(utc(2025, 3, 1), "cus_odC", "c@odoo-client.test", code="odoo-ref")
    sc.paid(utc(2025, 3, 1, 1), "in_odC_1", "cus_odC", 60000, "eur")  # a year up front
    sc.refund(utc(2025, 3, 10), "in_odC_1", 60000, 10000, "eur")
    sc.customer(utc(2025, 6, 1), "cus_odD", "d@odoo-client.test", code="odoo-partner")
    sc.paid(utc(2025, 6, 15), "in_odD_1", "cus_odD", 12100, "eur", tax=2100)
    sc.dispute(utc(2025, 8, 1), "in_odD_1", 12100, "eur")
    sc.customer(utc(2025, 2, 1), "cus_odE", "e@odoo-client.test", code="odoo-applied")
    sc.paid(utc(2025, 2, 2), "in_odE_1", "cus_odE", 10000, "eur")


ODOOPBX = Plan(
    program="odoopbx", currency="EUR", start=utc(2025, 1, 1), end=utc(2026, 1, 16),
    setup=odoopbx_setup, events=odoopbx_events,
    # partner: A (by installation) 12 x 30% of €100 = 36000; D 30% of €100 net of €21 tax = 3000,
    #   disputed after release: 3000 voided.  payable 36000.
    # referral: B 12 x 15% of €50 = 9000, payment 13 nothing; C 15% of €600 = 9000, refund of
    #   €100 of €600 reverses 1500.  payable 16500.  The applied partner: nothing.
    # Payouts: the partner (PayPal address) is paid automatically once payable reaches €200:
    #   A's first 7 months = 21000 in one payout (PayPal dry-run: reserved in_payout); the 5
    #   later months, 15000, stay under the threshold.  The referral has no PayPal address, so
    #   it is listed for a manual payout: 10500 (C's 7500 and B's Jan-Apr) in the April listing,
    #   which the operator never settles in this scenario, so no later listing is made and the
    #   6000 released since stays payable.
    expected={"odoo-partner": (0, 15000, 21000, 0, 3000), "odoo-ref": (0, 6000, 10500, 0, 1500),
              "odoo-applied": (0, 0, 0, 0, 0)},
)

PLANS = {plan.program: plan for plan in (CALLPAGE, CRAZYCALL, CALLBELL, CTM, ODOOPBX)}
ALL_PROGRAMS = {name: {"plugin": name} for name in PLANS}


def balances_by_code(client: Any, plan: Plan) -> Balances:
    from tests.stripe_helpers import balance

    response = client.get(f"/api/v1/partners?program={plan.program}&limit=1000",
                          headers=operator_headers())
    assert response.status_code == 200, response.text
    out = {}
    for partner in response.json()["items"]:
        b = balance(client, partner["id"], plan.currency)
        out[partner["code"]] = (b["pending"], b["payable"], b["in_payout"], b["paid"], b["voided"])
    return out
