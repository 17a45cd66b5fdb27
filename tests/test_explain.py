"""GET /api/v1/commissions/{id}/explain: every line says which rule, inputs and event made it,
on the real programs: crazycall's percentage and its pro-rata refund, callpage's capped window,
calltrackingmetrics' tiered bounty booked by `hub tick`."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from starlette.testclient import TestClient

from connectors import stripe_trigger as st
from hub.app import create_app
from hub.jobs.tick import run_tick
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

    from hub.ingest.whatif import simulated_program

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

def _month(n: int) -> int:
    """The first of the n-th month from 2026-01 (0-based), as a Stripe timestamp."""
    year, month = divmod(n, 12)
    return int(datetime(2026 + year, month + 1, 1, tzinfo=UTC).timestamp())


def test_explain_callpage_capped_window_payment_3_of_12_and_the_13th_earns_nothing(make_hub,
                                                                                 backend):
    hub = make_hub(backend, programs={"callpage": {"plugin": "callpage"}})
    with TestClient(create_app(hub)) as c:
        partner = create_partner(c, program="callpage")
        post_event(c, st.event("customer.created", st.customer(
            "cus_w", email="w@x.test", partner_code=partner["code"])))
        for i in range(13):  # monthly on the 1st: payment 13 is 2027-01-01, 12 months after
            pay(c, f"in_w{i + 1}", "cus_w", 4900, _month(i))
        items = commissions(c, partner["id"])
        keys = sorted(i["key"] for i in items)
        assert keys == sorted(f"pay:stripe:in_w{i}" for i in range(1, 13))  # not the 13th
        third = next(i for i in items if i["key"] == "pay:stripe:in_w3")
        body = explain(c, third["id"])
        last = explain(c, next(i for i in items if i["key"] == "pay:stripe:in_w12")["id"])

    assert body["sentence"] == ("25% of $49.00 paid on 2026-03-01 "
                                "(in_w3, payment 3 of the first 12 months) = $12.25")
    assert last["sentence"] == ("25% of $49.00 paid on 2026-12-01 "
                                "(in_w12, payment 12 of the first 12 months) = $12.25")
    d = body["derivation"]
    assert (d["plugin"], d["rule"]) == ("callpage", "first_months_percentage")
    assert d["settings_hash"] == hub.programs["callpage"].settings_hash
    window = d["inputs"]["window"]
    assert (window["payment"], window["months"]) == (3, 12)
    assert window["start"].startswith("2026-01-01") and window["end"].startswith("2027-01-01")
    assert (d["inputs"]["base"], d["inputs"]["rate"], d["inputs"]["payment"]) == (4900, "0.25",
                                                                                 "in_w3")
    assert ("payment 3 within the first 12 months (2026-01-01 to 2027-01-01)" in d["details"])
    assert body["event"]["type"] == "invoice.paid" and body["event"]["object"]["id"] == "in_w3"


# --- calltrackingmetrics: a one-time bounty whose tier depends on active referrals -----------

def test_explain_calltrackingmetrics_bounty_with_a_tier_booked_by_hub_tick(make_hub, backend):
    """25 accounts active all through April 2026; one of them, on growth, reaches 90 days
    active on 2026-04-01: the upper growth bounty, booked by the first tick after April."""
    hub = make_hub(backend, programs={"calltrackingmetrics": {"plugin": "calltrackingmetrics"}})
    with TestClient(create_app(hub)) as c:
        partner = create_partner(c, program="calltrackingmetrics")
        for action in ("approve", "agreement"):
            assert c.post(f"/api/v1/partners/{partner['id']}/{action}",
                          headers=operator_headers()).status_code == 200
        started = {}
        for n in range(25):  # account 0 from 2026-01-01 (90 days: 2026-04-01), the rest later
            at = T0 + (0 if n == 0 else 10 * DAY)
            post_event(c, st.event("customer.created", st.customer(
                f"cus_t{n}", email=f"t{n}@c.test", partner_code=partner["code"], created=at),
                created=at))
            started[n] = st.event("customer.subscription.created", st.subscription(
                f"sub_t{n}", customer_id=f"cus_t{n}", plan="growth" if n == 0 else "performance"),
                created=at)
            post_event(c, started[n])
        run_tick(hub, datetime(2026, 4, 30, tzinfo=UTC))   # April still open: nothing
        assert not commissions(c, partner["id"])
        run_tick(hub, datetime(2026, 5, 1, tzinfo=UTC))
        line = next(i for i in commissions(c, partner["id"]) if i["key"] == "bounty:cus_t0")
        body = explain(c, line["id"])

    assert body["amount"] == 14900
    assert body["sentence"] == ("$149.00 for cus_t0 on growth: 90 days active on 2026-04-01, "
                                "with 25 active referral accounts in 2026-04 (at or over 25)")
    d = body["derivation"]
    assert (d["plugin"], d["rule"]) == ("calltrackingmetrics", "active_days_bounty")
    assert d["inputs"]["tier"] == {"label": "25 or more active referral accounts", "count": 25,
                                   "threshold": 25}
    assert d["inputs"]["plan"] == "growth" and d["inputs"]["bounty"] == 14900
    assert "tier: 25 or more active referral accounts (25 counted, threshold 25)" in d["details"]
    assert "bounty $149.00" in d["details"] and "plan growth" in d["details"]
    # the cause: the subscription event that put the account in good standing
    assert body["event"]["id"] == started[0]["id"]
    assert body["event"]["type"] == "customer.subscription.created"
    assert body["payment"] is None
    assert body["earned_at"].startswith("2026-04-01")
    # bounties have no hold by default (calltrackingmetrics hold_days = 0): available when earned
    assert datetime.fromisoformat(body["available_at"]) == datetime.fromisoformat(body["earned_at"])


def test_fields_used_reads_any_provider_shape():
    from hub.ledger.explain import fields_used

    installer = '{"install_id": "inst-1", "product": "odoopbx", "partner_code": "k7", "x": 1}'
    assert fields_used(installer, {}) == {"install_id": "inst-1", "product": "odoopbx",
                                          "partner_code": "k7"}
    paypal = ('{"id": "WH-1", "resource": {"id": "SALE-1", "amount": {"total": "10.00"},'
              ' "billing_agreement_id": "I-9", "state": "completed"}}')
    assert fields_used(paypal, {"payment": "I-9"}) == {"id": "SALE-1",
                                                       "billing_agreement_id": "I-9"}
    assert fields_used("not json", {}) == {}
