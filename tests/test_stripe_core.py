"""Issue 2's path end to end: signed Stripe events -> attribution -> commission -> balances."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from connectors import stripe_trigger as st
from hub.db.models import Commission, LedgerEntry, ProviderEvent
from tests.stripe_helpers import balance, commissions, create_partner, post_event

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def test_payment_then_partial_refund(client, hub):
    partner = create_partner(client)
    assert post_event(client, st.event("customer.created", st.customer(
        "cus_1", email="bob@customer.test", partner_code=partner["code"]))).status_code == 200
    paid = st.event("invoice.paid", st.invoice("in_1", customer_id="cus_1", amount=4900,
                                               subscription_id="sub_1", charge_id="ch_1",
                                               paid_at=T0, shape="legacy"))
    assert post_event(client, paid).status_code == 200
    assert balance(client, partner["id"])["pending"] == 980

    refund = st.event("charge.refunded", st.charge_refunded("ch_1", amount=4900,
                                                            amount_refunded=980, invoice_id="in_1"))
    assert post_event(client, refund).status_code == 200
    b = balance(client, partner["id"])
    assert (b["pending"], b["voided"], b["payable"]) == (784, 196, 0)

    items = commissions(client, partner["id"])
    assert sorted(i["amount"] for i in items) == [-196, 980]
    earned = next(i for i in items if i["amount"] == 980)
    assert earned["source_event"] == paid["id"] and earned["state"] == "pending"
    assert earned["currency"] == "USD"
    assert next(i for i in items if i["amount"] < 0)["source_event"] == refund["id"]


def test_newer_invoice_shape_reads_subscription_metadata_code(client, hub):
    partner = create_partner(client)
    evt = st.event("invoice.paid", st.invoice("in_2", customer_id="cus_2", amount=10000,
                                              subscription_id="sub_2", intent_id="pi_2",
                                              partner_code=partner["code"], paid_at=T0))
    assert post_event(client, evt).status_code == 200
    assert balance(client, partner["id"])["pending"] == 2000
    # basil: the invoice names no payment; Stripe links it in invoice_payment.paid
    post_event(client, st.event("invoice_payment.paid", st.invoice_payment(
        "in_2", amount=10000, intent_id="pi_2")))
    # a refund identified only by payment intent (the newer API has no invoice.charge)
    post_event(client, st.event("charge.refunded", st.charge_refunded(
        "ch_2", amount=10000, amount_refunded=10000, intent_id="pi_2")))
    assert balance(client, partner["id"])["pending"] == 0


def test_bad_signature_is_400_and_writes_nothing(client, hub):
    partner = create_partner(client)
    evt = st.event("invoice.paid", st.invoice("in_3", customer_id="cus_3", amount=4900,
                                              partner_code=partner["code"], subscription_id="s"))
    response = post_event(client, evt, secret="whsec_wrong")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_signature"
    old = post_event(client, evt, timestamp=int(time.time()) - 301)
    assert old.status_code == 400
    future = post_event(client, evt, timestamp=int(time.time()) + 3600)
    assert future.status_code == 400
    missing = client.post("/webhooks/stripe", content=b"{}")
    assert missing.status_code == 400
    with hub.sessions() as s:
        assert s.scalar(select(func.count()).select_from(ProviderEvent)) == 0
        assert s.scalar(select(func.count()).select_from(LedgerEntry)) == 0


def test_duplicate_delivery_changes_nothing(client, hub):
    partner = create_partner(client)
    evt = st.event("invoice.paid", st.invoice("in_4", customer_id="cus_4", amount=4900,
                                              partner_code=partner["code"], subscription_id="s4"))
    first = post_event(client, evt)
    again = [post_event(client, evt) for _ in range(3)]
    assert first.json() == {"received": True, "duplicate": False}
    assert all(r.status_code == 200 and r.json()["duplicate"] for r in again)
    assert balance(client, partner["id"])["pending"] == 980
    assert len(commissions(client, partner["id"])) == 1


def test_out_of_order_refund_before_payment_and_payment_before_customer(client, hub):
    partner = create_partner(client)
    refund = st.event("charge.refunded", st.charge_refunded("ch_5", amount=5000,
                                                            amount_refunded=2500,
                                                            invoice_id="in_5"))
    paid = st.event("invoice.paid", st.invoice("in_5", customer_id="cus_5", amount=5000,
                                               charge_id="ch_5", subscription_id="s5",
                                               shape="legacy"))
    cust = st.event("customer.created", st.customer("cus_5", email="c5@x.test",
                                                    partner_code=partner["code"]))
    for evt in (refund, paid, cust):
        assert post_event(client, evt).status_code == 200
    b = balance(client, partner["id"])
    assert (b["pending"], b["voided"]) == (500, 500)


def test_dispute_reverses_whole_commission_and_tick_releases_after_hold(client, hub):
    from hub.clock import from_timestamp
    from hub.jobs.tick import run_tick

    partner = create_partner(client)
    for i, amount in ((1, 4900), (2, 9900)):
        post_event(client, st.event("invoice.paid", st.invoice(
            f"in_6{i}", customer_id="cus_6", amount=amount, charge_id=f"ch_6{i}",
            subscription_id="s6", partner_code=partner["code"], paid_at=T0, shape="legacy")))
    assert balance(client, partner["id"])["pending"] == 980 + 1980
    post_event(client, st.event("charge.dispute.created", st.dispute("dp_1", charge_id="ch_62",
                                                                      amount=9900)))
    assert balance(client, partner["id"])["pending"] == 980
    assert run_tick(hub, from_timestamp(T0 + 29 * 86400))["holds"]["released"] == 0
    assert run_tick(hub, from_timestamp(T0 + 30 * 86400))["holds"]["released"] == 1
    assert run_tick(hub, from_timestamp(T0 + 31 * 86400))["holds"]["released"] == 0
    b = balance(client, partner["id"])
    assert (b["pending"], b["payable"], b["voided"]) == (0, 980, 1980)
    # a refund after release comes out of payable
    post_event(client, st.event("charge.refunded", st.charge_refunded(
        "ch_61", amount=4900, amount_refunded=4900, invoice_id="in_61")))
    b = balance(client, partner["id"])
    assert (b["payable"], b["voided"]) == (0, 2960)
    assert sum(b[k] for k in ("pending", "payable", "in_payout", "paid", "voided")) == 980 + 1980


def test_unknown_event_type_is_stored_and_ignored(client, hub):
    evt = st.event("product.created", {"id": "prod_1", "object": "product"})
    response = post_event(client, evt)
    assert response.status_code == 200
    with hub.sessions() as s:
        row = s.scalars(select(ProviderEvent)).one()
        assert (row.event_id, row.outcome) == (evt["id"], "ignored")


def test_malformed_json_with_valid_signature_is_400(client):
    body = "{not json"
    headers = {"Stripe-Signature": st.sign(body, "whsec_test_" + "x" * 24)}
    assert client.post("/webhooks/stripe", content=body, headers=headers).status_code == 400


def test_oversized_body_is_413(make_hub):
    from starlette.testclient import TestClient

    from hub.app import create_app

    hub = make_hub(server={"max_body_bytes": 1000})
    with TestClient(create_app(hub)) as c:
        response = c.post("/webhooks/stripe", content=b"x" * 2000,
                          headers={"Stripe-Signature": "t=1,v1=00"})
        assert response.status_code == 413


def test_self_referral_earns_nothing_and_is_flagged(client, hub):
    from hub.db.models import Referral

    partner = create_partner(client, email="Ann@Partners.test")
    post_event(client, st.event("customer.created", st.customer(
        "cus_7", email="ann@partners.TEST", partner_code=partner["code"])))
    post_event(client, st.event("invoice.paid", st.invoice("in_7", customer_id="cus_7",
                                                           amount=4900, subscription_id="s7")))
    assert balance(client, partner["id"])["pending"] == 0
    with hub.sessions() as s:
        ref = s.scalars(select(Referral)).one()
        assert ref.self_referral and "email" in (ref.flag_reason or "")


def test_unattributed_payment_earns_nothing(client, hub):
    partner = create_partner(client)
    post_event(client, st.event("invoice.paid", st.invoice("in_8", customer_id="cus_8",
                                                           amount=4900, subscription_id="s8")))
    assert balance(client, partner["id"])["pending"] == 0
    with hub.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Commission)) == 0


def test_stripe_customer_lookup_when_event_lacks_attribution(make_hub, backend):
    import httpx
    import respx
    from starlette.testclient import TestClient

    from hub.app import create_app

    hub = make_hub(backend, connectors={"stripe": {"api_key": "sk_test_lookup123"}})
    with TestClient(create_app(hub)) as c, respx.mock(assert_all_called=True) as mock:
        partner = create_partner(c)
        route = mock.get("https://api.stripe.com/v1/customers/cus_9").mock(
            return_value=httpx.Response(200, json=st.customer(
                "cus_9", email="nine@x.test", partner_code=partner["code"])))
        post_event(c, st.event("invoice.paid", st.invoice("in_9", customer_id="cus_9",
                                                          amount=4900, subscription_id="s9")))
        assert route.called
        assert route.calls.last.request.headers["authorization"] == "Bearer sk_test_lookup123"
        assert balance(c, partner["id"])["pending"] == 980
        # known now: the next payment needs no lookup
        post_event(c, st.event("invoice.paid", st.invoice("in_9b", customer_id="cus_9",
                                                          amount=4900, subscription_id="s9")))
        assert route.call_count == 1


def test_webhooks_with_an_api_key_check_attribution_per_batch(make_hub, backend, monkeypatch):
    """With an API key set, a webhook opens no session of its own to ask whether its customer is
    attributed (the group commit asks for its whole batch), and the Stripe client is built once,
    not per event."""
    import httpx
    import respx
    from starlette.testclient import TestClient

    import connectors.stripe as stripe_connector
    from hub.app import create_app

    built, checked = [], []
    real_init, real_check = stripe_connector.StripeLookup.__init__, stripe_connector.is_attributed
    monkeypatch.setattr(stripe_connector.StripeLookup, "__init__",
                        lambda self, *a, **k: built.append(1) or real_init(self, *a, **k))
    monkeypatch.setattr(stripe_connector, "is_attributed",
                        lambda *a: checked.append(a[2]) or real_check(*a))
    hub = make_hub(backend, connectors={"stripe": {"api_key": "sk_test_batch"}})
    with TestClient(create_app(hub)) as c, respx.mock(assert_all_called=False) as mock:
        partner = create_partner(c)
        for n in range(3):  # unknown customers: each looked up, through the one client
            mock.get(f"https://api.stripe.com/v1/customers/cus_u{n}").mock(
                return_value=httpx.Response(200, json=st.customer(
                    f"cus_u{n}", email=f"u{n}@x.test", partner_code=partner["code"])))
            post_event(c, st.event("invoice.paid", st.invoice(
                f"in_u{n}", customer_id=f"cus_u{n}", amount=4900, subscription_id=f"su{n}")))
        assert (len(built), sorted(checked), len(mock.calls)) == (1, ["cus_u0", "cus_u1",
                                                                      "cus_u2"], 3)
        for n in range(3):  # attributed now: no per-event check, no lookup
            post_event(c, st.event("invoice.paid", st.invoice(
                f"in_v{n}", customer_id=f"cus_u{n}", amount=4900, subscription_id=f"su{n}")))
        assert (len(built), len(checked), len(mock.calls)) == (1, 3, 3)
        assert balance(c, partner["id"])["pending"] == 6 * 980


def test_stripe_lookup_timeout_keeps_the_event(make_hub):
    import httpx
    import respx
    from starlette.testclient import TestClient

    from hub.app import create_app

    hub = make_hub(connectors={"stripe": {"api_key": "sk_test_lookup123"}})
    with TestClient(create_app(hub)) as c, respx.mock() as mock:
        mock.get("https://api.stripe.com/v1/customers/cus_10").mock(
            side_effect=httpx.ReadTimeout("slow"))
        evt = st.event("invoice.paid", st.invoice("in_10", customer_id="cus_10", amount=4900,
                                                  subscription_id="s10"))
        assert post_event(c, evt).status_code == 200
    with hub.sessions() as s:
        assert s.scalar(select(func.count()).select_from(ProviderEvent)) == 1


def test_tax_stated_apart_is_not_commissioned(client, hub):
    partner = create_partner(client)
    post_event(client, st.event("invoice.paid", st.invoice(
        "in_11", customer_id="cus_11", amount=5900, tax=1000, subscription_id="s11",
        partner_code=partner["code"], charge_id="ch_11", shape="legacy")))
    assert balance(client, partner["id"])["pending"] == 980
    post_event(client, st.event("charge.refunded", st.charge_refunded(
        "ch_11", amount=5900, amount_refunded=2950, invoice_id="in_11")))
    assert balance(client, partner["id"])["pending"] == 490


@pytest.mark.parametrize("path", ["/api/v1/partners", "/api/v1/partners/x",
                                  "/api/v1/partners/x/commissions"])
def test_operator_api_requires_the_token(client, path):
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
