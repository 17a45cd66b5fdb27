"""GET /api/v1/commissions/{id}/explain: every line says which rule, inputs and event made it.

The callpage (capped window) and CTM (tiered bounty) cases use test-local plugins that book
through the real path until those plugins land; switch them to the real programs at merge.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from starlette.testclient import TestClient

from connectors import stripe_trigger as st
from hub import hookimpl, ledger
from hub.app import create_app
from hub.db.models import Customer, PaymentRecord, Referral
from hub.dispatch import referral_view
from hub.history import history_for
from hub.money import format_money, percent_of
from hub.plugins import load_registry, plugin_manager
from hub.programs import (Draft, ProgramKind, ProgramSettings, TickContext, rate_sentence,
                          tier_input, window_input)
from tests.conftest import operator_headers
from tests.stripe_helpers import commissions, create_partner, post_event

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
DAY = 86400


def explain(client: TestClient, commission_id: str, status: int = 200) -> dict[str, Any]:
    response = client.get(f"/api/v1/commissions/{commission_id}/explain",
                          headers=operator_headers())
    assert response.status_code == status, response.text
    return dict(response.json())


def pay(client: TestClient, invoice: str, customer: str, amount: int, at: int,
        **extra: Any) -> dict[str, Any]:
    evt = st.event("invoice.paid", st.invoice(invoice, customer_id=customer, amount=amount,
                                              subscription_id=f"sub_{customer}", paid_at=at,
                                              charge_id=f"ch_{invoice}", shape="legacy", **extra))
    post_event(client, evt)
    return evt


def test_explain_crazycall_percentage_commission(client, hub):
    partner = create_partner(client)
    pay(client, "in_0", "cus_1", 4900, T0, partner_code=partner["code"])
    paid = pay(client, "in_1", "cus_1", 4900, T0 + 31 * DAY)
    line = next(c for c in commissions(client, partner["id"]) if c["key"].endswith("in_1"))

    body = explain(client, line["id"])

    assert body["sentence"] == "20% of $49.00 paid on 2026-02-01 (in_1, payment 2) = $9.80"
    assert (body["amount"], body["currency"], body["state"]) == (980, "USD", "pending")
    d = body["derivation"]
    assert (d["plugin"], d["program"], d["rule"]) == ("crazycall", "crazycall",
                                                      "recurring_percentage")
    assert d["settings_hash"] == hub.programs["crazycall"].settings_hash
    assert d["settings_changed_since"] is False
    assert d["inputs"] == {"base": 4900, "rate": "0.20", "payment_number": 2, "payment": "in_1"}
    assert d["details"][:2] == ["base $49.00", "rate 20%"]
    event = body["event"]
    assert (event["provider"], event["id"], event["type"]) == ("stripe", paid["id"], "invoice.paid")
    assert event["object"]["id"] == "in_1"
    assert (event["object"]["amount_paid"], event["object"]["currency"]) == (4900, "usd")
    assert event["object"]["customer"] == "cus_1"
    assert body["payment"]["ref"] == "in_1" and body["payment"]["gross_amount"] == 4900
    assert body["reverses"] is None and body["reversed_by"] == []


def test_explain_crazycall_pro_rata_refund_names_and_links_what_it_reverses(client, hub):
    partner = create_partner(client)
    pay(client, "in_r", "cus_r", 4900, T0, partner_code=partner["code"])
    refund = st.event("charge.refunded", st.charge_refunded("ch_in_r", amount=4900,
                                                            amount_refunded=980,
                                                            invoice_id="in_r"))
    post_event(client, refund)
    items = commissions(client, partner["id"])
    earning = next(i for i in items if i["amount"] > 0)
    reversal = next(i for i in items if i["amount"] < 0)

    body = explain(client, reversal["id"])

    assert body["amount"] == -196
    assert body["sentence"] == "Refund of $9.80 of $49.00 (in_r) reverses $1.96 of $9.80"
    assert body["reverses"]["id"] == earning["id"]
    assert body["reverses"]["sentence"].startswith("20% of $49.00")
    assert body["derivation"]["rule"] == "refund_pro_rata"
    assert body["derivation"]["plugin"] == "crazycall"
    inputs = body["derivation"]["inputs"]
    assert (inputs["refunded"], inputs["gross"], inputs["reversed_total"], inputs["of"]) == (
        980, 4900, 196, 980)
    assert "refunded $9.80 of $49.00" in body["derivation"]["details"]
    assert body["event"]["id"] == refund["id"] and body["event"]["type"] == "charge.refunded"
    assert body["event"]["object"]["amount_refunded"] == 980
    # the link leads to the earning, whose explanation lists this reversal
    linked = client.get(body["reverses"]["href"], headers=operator_headers()).json()
    assert linked["id"] == earning["id"]
    assert [r["id"] for r in linked["reversed_by"]] == [reversal["id"]]
    assert linked["reversed_by"][0]["href"] == f"/api/v1/commissions/{reversal['id']}/explain"


def test_explain_is_operator_only_and_404_for_unknown(client):
    assert client.get("/api/v1/commissions/com_x/explain").status_code == 401
    body = explain(client, "com_nope", status=404)
    assert body["error"]["code"] == "not_found"
    doc = client.get("/openapi.json").json()
    assert doc["paths"]["/api/v1/commissions/{commission_id}/explain"]["get"]["security"]


def test_explanation_flags_settings_changed_since_booking(client, hub):
    import dataclasses

    from hub.whatif import simulated_program

    partner = create_partner(client)
    pay(client, "in_s", "cus_s", 4900, T0, partner_code=partner["code"])
    line_id = commissions(client, partner["id"])[0]["id"]
    raised = simulated_program(hub, "crazycall", {"rate": "0.25"})
    hub.programs = {**hub.programs, "crazycall": raised}  # the operator raised the rate since
    body = explain(client, line_id)
    assert body["derivation"]["settings_changed_since"] is True
    assert body["derivation"]["settings_hash"] != raised.settings_hash
    assert body["sentence"].startswith("20% of $49.00")  # what was booked, not re-derived
    assert dataclasses.asdict(raised.settings)["rate"] == Decimal("0.25")


# --- callpage: 25% of payments in the first 12 months (a capped window) ----------------------

@dataclass(frozen=True)
class WindowSettings(ProgramSettings):
    rate: Decimal = Decimal("0.25")
    months: int = 12


def _months_later(start: datetime, months: int) -> datetime:
    year, month = divmod(start.month - 1 + months, 12)
    return start.replace(year=start.year + year, month=month + 1)


class CappedWindow:
    """Stands in for callpage until its plugin lands."""

    @hookimpl
    def register_programs(self, register):
        register(ProgramKind(name="capped_window", settings=WindowSettings))

    @hookimpl
    def commissions_for_payment(self, program, payment, referral, history):
        s = program.settings
        start = history.first_payment_at
        end = _months_later(start, s.months)
        if payment.occurred_at >= end:
            return []
        number = history.payment_number(payment)
        return [Draft(
            key=f"pay:{payment.provider}:{payment.ref}", amount=percent_of(payment.amount, s.rate),
            currency=payment.currency, earned_at=payment.occurred_at, rule="percentage_in_window",
            sentence=rate_sentence(s.rate, payment.amount, payment.currency, payment.occurred_at,
                                   f"{payment.ref}, payment {number} of the first {s.months} months"),
            inputs={"base": payment.amount, "rate": str(s.rate), "payment": payment.ref,
                    "payment_number": number, "window": window_input(number, s.months, start, end)})]


def test_explain_callpage_capped_window_payment_3_of_12(make_hub, backend):
    pm = plugin_manager()
    pm.register(CappedWindow(), name="capped_window")
    hub = make_hub(backend, programs={"callpage": {"plugin": "capped_window"}},
                   registry=load_registry(pm))
    with TestClient(create_app(hub)) as c:
        partner = create_partner(c, program="callpage")
        post_event(c, st.event("customer.created", st.customer(
            "cus_w", email="w@x.test", partner_code=partner["code"])))
        for i, day in enumerate((0, 31, 59, 366)):
            pay(c, f"in_w{i}", "cus_w", 4900, T0 + day * DAY)
        items = commissions(c, partner["id"])
        assert sorted(i["key"] for i in items) == [f"pay:stripe:in_w{i}" for i in range(3)]
        third = next(i for i in items if i["key"] == "pay:stripe:in_w2")
        body = explain(c, third["id"])

    assert body["sentence"] == ("25% of $49.00 paid on 2026-03-01 "
                                "(in_w2, payment 3 of the first 12 months) = $12.25")
    window = body["derivation"]["inputs"]["window"]
    assert (window["payment"], window["months"]) == (3, 12)
    assert window["start"].startswith("2026-01-01") and window["end"].startswith("2027-01-01")
    assert ("payment 3 within the first 12 months (2026-01-01 to 2027-01-01)"
            in body["derivation"]["details"])
    assert body["derivation"]["plugin"] == "capped_window"
    assert body["event"]["object"]["id"] == "in_w2"


# --- calltrackingmetrics: a one-time bounty whose tier depends on active referrals -----------

@dataclass(frozen=True)
class TierSettings(ProgramSettings):
    bounty: int = 9900
    bounty_high: int = 14900
    threshold: int = 25


class TieredBounty:
    """Stands in for the CTM plugin until it lands: the bounty at the 90-day mark."""

    @hookimpl
    def register_programs(self, register):
        register(ProgramKind(name="tiered_bounty", settings=TierSettings))

    @hookimpl
    def commissions_for_tick(self, program, referral, history, tick):
        s = program.settings
        high = tick.active_referrals >= s.threshold
        amount = s.bounty_high if high else s.bounty
        label = (f"{s.threshold} or more active referrals" if high
                 else f"under {s.threshold} active referrals")
        return [Draft(
            key=f"bounty:{referral.customer_ref}", amount=amount, currency=program.currency,
            earned_at=tick.now, rule="bounty_90_days_active",
            sentence=(f"{history.plan} plan, 90 days active on {tick.now.date().isoformat()}, "
                      f"{label} that month: bounty {format_money(amount, program.currency)}"),
            inputs={"bounty": amount, "plan": history.plan,
                    "tier": tier_input(label, tick.active_referrals, s.threshold)})]


def _book_tick(hub: Any, program_name: str, now: datetime, active: int) -> str:
    """What the tick job does for one referral: ask the rule, book through `ledger.book`."""
    program = hub.programs[program_name]
    with hub.transaction() as session:
        referral = session.query(Referral).one()
        customer = session.get(Customer, referral.customer_id)
        partner = referral_partner(session, referral)
        last_payment = session.query(PaymentRecord).order_by(PaymentRecord.occurred_at.desc()).first()
        drafts = hub.rules(program, "commissions_for_tick",
                           referral=referral_view(referral, partner, customer),
                           history=history_for(session, customer.id, customer.ref),
                           tick=TickContext(now=now, active_referrals=active))
        line = ledger.book(session, program, partner.id, drafts[0], referral_id=referral.id,
                           payment_id=None, event_id=last_payment.event_id,
                           plugin_name=program.plugin)
        assert line is not None
        return line.id


def referral_partner(session: Any, referral: Referral) -> Any:
    from hub.db.models import Partner

    return session.get(Partner, referral.partner_id)


def test_explain_calltrackingmetrics_bounty_with_a_tier(make_hub, backend):
    pm = plugin_manager()
    pm.register(TieredBounty(), name="tiered_bounty")
    hub = make_hub(backend, programs={"calltrackingmetrics": {"plugin": "tiered_bounty"}},
                   registry=load_registry(pm))
    with TestClient(create_app(hub)) as c:
        partner = create_partner(c, program="calltrackingmetrics")
        paid = pay(c, "in_b", "cus_b", 9900, T0, partner_code=partner["code"], plan="Growth")
        mark = datetime(2026, 4, 1, tzinfo=timezone.utc)
        line_id = _book_tick(hub, "calltrackingmetrics", mark, active=25)
        body = explain(c, line_id)

    assert body["amount"] == 14900
    assert body["sentence"] == ("Growth plan, 90 days active on 2026-04-01, 25 or more active "
                                "referrals that month: bounty $149.00")
    inputs = body["derivation"]["inputs"]
    assert inputs["tier"] == {"label": "25 or more active referrals", "count": 25,
                              "threshold": 25}
    assert inputs["plan"] == "Growth" and inputs["bounty"] == 14900
    details = body["derivation"]["details"]
    assert "tier: 25 or more active referrals (25 counted, threshold 25)" in details
    assert "bounty $149.00" in details and "plan Growth" in details
    assert body["event"]["id"] == paid["id"]
    assert body["payment"] is None
    assert body["earned_at"].startswith("2026-04-01")
    assert mark + timedelta(days=30) == datetime.fromisoformat(body["available_at"])


def test_fields_used_reads_any_provider_shape():
    from hub.explain import fields_used

    installer = '{"install_id": "inst-1", "product": "odoopbx", "partner_code": "k7", "x": 1}'
    assert fields_used(installer, {}) == {"install_id": "inst-1", "product": "odoopbx",
                                          "partner_code": "k7"}
    paypal = ('{"id": "WH-1", "resource": {"id": "SALE-1", "amount": {"total": "10.00"},'
              ' "billing_agreement_id": "I-9", "state": "completed"}}')
    assert fields_used(paypal, {"payment": "I-9"}) == {"id": "SALE-1",
                                                       "billing_agreement_id": "I-9"}
    assert fields_used("not json", {}) == {}
