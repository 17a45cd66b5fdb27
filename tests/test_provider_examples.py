"""The providers' own published examples, wrapped and signed (or verified) as the provider does,
through the real webhook path, for every event type the hub handles or ignores.

- Stripe: `tests/providers/stripe/fixtures3.json`, Stripe's example object of every resource
  (github.com/stripe/openapi, MIT), in an event of the newest API version, signed with
  Stripe-Signature, posted to /webhooks/stripe.
- PayPal: `tests/providers/paypal/samples.json`, the webhook bodies PayPal publishes in its SDKs'
  samples and the subscription example of its REST API specification, checked through the
  verify-webhook-signature call (mocked with respx, as in test_paypal_connector.py).

The money these examples move is checked to the cent; every type answers 200, is stored once and
a redelivery is a duplicate.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import respx
from sqlalchemy import func, select
from starlette.testclient import TestClient

from connectors import paypal as pp
from connectors import stripe as stripe_connector
from connectors import stripe_trigger as st
from connectors.stripe_versions import NEWEST
from hub.app import create_app
from hub.db.models import ProviderEvent, SubscriptionState
from tests.payout_helpers import SANDBOX, FakePaypal
from tests.stripe_helpers import balance, create_partner, post_event
from tests.test_paypal_connector import Verifier, item_event, paypal_event, post

PROVIDERS = Path(__file__).parent / "providers"
FIXTURES = json.loads((PROVIDERS / "stripe/fixtures3.json").read_text())["resources"]
PAYPAL = json.loads((PROVIDERS / "paypal/samples.json").read_text())
T0 = 1_767_225_600

# Event types the hub reads, and a few it deliberately ignores (stored, 200, no facts).
STRIPE_HANDLED = sorted(stripe_connector.NORMALISERS)
STRIPE_IGNORED = ["payment_intent.succeeded", "payment_intent.created", "charge.succeeded",
                  "charge.captured", "charge.dispute.updated", "charge.dispute.funds_withdrawn",
                  "charge.dispute.funds_reinstated", "refund.failed", "invoice.created",
                  "invoice.finalized", "invoice.updated", "invoice.voided", "customer.deleted",
                  "product.created", "price.created", "payment_method.attached",
                  "checkout.session.expired", "credit_note.created"]


def resource_of(event_type: str) -> str:
    """The resource a Stripe event type carries."""
    for prefix, resource in (("checkout.session.", "checkout.session"),
                             ("customer.subscription.", "subscription"),
                             ("charge.dispute.", "dispute"), ("charge.refund.", "refund"),
                             ("invoice_payment.", "invoice_payment"),
                             ("payment_method.", "payment_method"),
                             ("payment_intent.", "payment_intent"),
                             ("credit_note.", "credit_note")):
        if event_type.startswith(prefix):
            return resource
    return event_type.split(".")[0]


def fixture(resource: str, **overlay: Any) -> dict[str, Any]:
    return {**copy.deepcopy(FIXTURES[resource]), **overlay}


def stored(hub: Any) -> int:
    with hub.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(ProviderEvent)) or 0)


@pytest.mark.parametrize("event_type", STRIPE_HANDLED + STRIPE_IGNORED)
def test_every_stripe_type_on_stripes_own_example(make_hub, event_type):
    hub = make_hub()
    obj = fixture(resource_of(event_type))
    evt = st.event(event_type, obj, api_version=NEWEST, created=T0)
    with TestClient(create_app(hub)) as c:
        body, headers = st.signed_request(evt, "whsec_test_" + "x" * 24)
        first = c.post("/webhooks/stripe", content=body, headers=headers)
        again = c.post("/webhooks/stripe", content=body, headers=headers)
    assert first.status_code == 200, first.text
    assert (first.json()["duplicate"], again.json()["duplicate"]) == (False, True)
    assert stored(hub) == 1
    facts = stripe_connector.normalise(evt)
    if event_type in STRIPE_IGNORED:
        assert facts == []
    for fact in facts:  # what is read names ids from Stripe's own object, never a default
        refs = {v for k, v in vars(fact).items() if k.endswith("_ref") and v}
        assert refs and refs <= strings_in(obj), (fact, refs)


def strings_in(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return {s for v in value.values() for s in strings_in(v)}
    if isinstance(value, list):
        return {s for v in value for s in strings_in(v)}
    return set()


def test_stripes_examples_pay_refund_and_dispute_to_the_cent(client, hub):
    """Stripe's example invoice, invoice payment, charge and dispute, with the amounts and ids
    of one paid invoice filled in, through every step: pro rata, then whole."""
    partner = create_partner(client)
    inv_id, ch_id, pi_id = FIXTURES["invoice"]["id"], FIXTURES["charge"]["id"], "pi_fixture"
    invoice = fixture("invoice", status="paid", amount_paid=10_000, amount_due=10_000,
                      total=10_000, total_taxes=[],
                      status_transitions={**FIXTURES["invoice"]["status_transitions"],
                                          "paid_at": T0})
    invoice["parent"] = {"type": "subscription_details", "quote_details": None,
                         "subscription_details": {"metadata": {"partner_code": partner["code"]},
                                                  "subscription": "sub_fixture"}}
    link = fixture("invoice_payment", invoice=inv_id, status="paid", amount_paid=10_000,
                   currency="usd", payment={"type": "payment_intent", "payment_intent": pi_id})
    refunded = fixture("charge", amount=10_000, amount_captured=10_000, amount_refunded=2_500,
                       payment_intent=pi_id)
    dispute = fixture("dispute", amount=10_000, charge=ch_id, payment_intent=pi_id,
                      status="needs_response")
    post_event(client, st.event("charge.refunded", refunded, created=T0 + 60))  # before the link
    post_event(client, st.event("invoice.paid", invoice, created=T0))
    assert (balance(client, partner["id"])["pending"], balance(client, partner["id"])["voided"]) \
        == (2_000, 0)
    post_event(client, st.event("invoice_payment.paid", link, created=T0))
    assert (balance(client, partner["id"])["pending"], balance(client, partner["id"])["voided"]) \
        == (1_500, 500)
    post_event(client, st.event("charge.dispute.created", dispute, created=T0 + 120))
    assert (balance(client, partner["id"])["pending"], balance(client, partner["id"])["voided"]) \
        == (0, 2_000)


# --- PayPal -------------------------------------------------------------------------------------

# Every type of the families the hub reads, as PayPal's webhook event names list them
# (developer.paypal.com/api/rest/webhooks/event-names).
PAYPAL_TYPES = (
    [f"PAYMENT.SALE.{s}" for s in ("COMPLETED", "DENIED", "PENDING", "REFUNDED", "REVERSED")]
    + [f"PAYMENT.CAPTURE.{s}" for s in ("COMPLETED", "DENIED", "PENDING", "REFUNDED", "REVERSED",
                                        "DECLINED")]
    + [f"BILLING.SUBSCRIPTION.{s}" for s in ("CREATED", "ACTIVATED", "UPDATED", "EXPIRED",
                                             "CANCELLED", "SUSPENDED", "PAYMENT.FAILED",
                                             "RE-ACTIVATED")]
    + [f"PAYMENT.PAYOUTS-ITEM.{s}" for s in ("BLOCKED", "CANCELED", "DENIED", "FAILED", "HELD",
                                             "REFUNDED", "RETURNED", "SUCCEEDED", "UNCLAIMED")]
    + [f"PAYMENT.PAYOUTSBATCH.{s}" for s in ("DENIED", "PROCESSING", "SUCCESS")])


@pytest.fixture
def paypal(make_hub: Any, backend: str) -> Any:
    """A client of a hub whose PayPal verify-webhook-signature call is mocked, and the hub."""
    fake = FakePaypal()
    with respx.mock(assert_all_called=False) as router:
        router.post(f"{SANDBOX}/v1/notifications/verify-webhook-signature").mock(
            side_effect=Verifier())
        router.route(host="api.sandbox.paypal.com").mock(side_effect=fake.respx_side_effect)
        hub = make_hub(backend, connectors={"paypal": {
            "mode": "sandbox", "client_id": "cid", "client_secret": "csecret",
            "webhook_id": "WH-HOOK"}})
        with TestClient(create_app(hub)) as c:
            yield c, hub


def published(event_type: str) -> dict[str, Any]:
    """The newest PayPal-published webhook body of `event_type`."""
    return copy.deepcopy(next(s["event"] for s in reversed(PAYPAL["events"])
                              if s["event"]["event_type"] == event_type))


def published_subscription(status: str, code: str | None = None) -> dict[str, Any]:
    sub = copy.deepcopy(PAYPAL["resources"][0]["resource"])
    return {**sub, "status": status, **({"custom_id": code} if code else {})}


def sale_refund(sale: dict[str, Any], refund_id: str, total: str) -> dict[str, Any]:
    """A refund of a published sale, in the v1 refund shape PayPal sends (`sale_id`)."""
    return {"id": refund_id, "state": "completed", "sale_id": sale["id"],
            "parent_payment": sale.get("parent_payment"),
            "amount": {"total": total, "currency": sale["amount"]["currency"]},
            "create_time": sale["create_time"], "update_time": sale["update_time"],
            "links": [{"href": f"https://api.paypal.com/v1/payments/refund/{refund_id}",
                       "rel": "self", "method": "GET"}]}


def capture(capture_id: str, code: str | None = None) -> dict[str, Any]:
    # PayPal publishes no v2 capture webhook body in its SDKs or specifications: the shape
    # follows the v2 Payments API's capture object.
    return {"id": capture_id, "status": "COMPLETED", "final_capture": True,
            "amount": {"currency_code": "USD", "value": "30.00"},
            "supplementary_data": {"related_ids": {"order_id": "1AB234567A1234567"}},
            "create_time": "2026-01-05T10:00:00Z", "update_time": "2026-01-05T10:00:00Z",
            **({"custom_id": code} if code else {}),
            "links": [{"href": f"https://api.paypal.com/v2/payments/captures/{capture_id}",
                       "rel": "self", "method": "GET"}]}


def capture_refund(capture_id: str, refund_id: str, value: str) -> dict[str, Any]:
    return {"id": refund_id, "status": "COMPLETED",
            "amount": {"currency_code": "USD", "value": value},
            "create_time": "2026-01-05T11:00:00Z", "update_time": "2026-01-05T11:00:00Z",
            "links": [{"href": f"https://api.paypal.com/v2/payments/refunds/{refund_id}",
                       "rel": "self", "method": "GET"},
                      {"href": f"https://api.paypal.com/v2/payments/captures/{capture_id}",
                       "rel": "up", "method": "GET"}]}


def paypal_example(event_type: str) -> dict[str, Any]:
    family = event_type.rsplit(".", 1)[0] if "PAYMENT.FAILED" not in event_type \
        else "BILLING.SUBSCRIPTION"
    if event_type == "PAYMENT.SALE.COMPLETED":
        return published(event_type)
    sale = published("PAYMENT.SALE.COMPLETED")["resource"]
    if family == "PAYMENT.SALE":
        if event_type.endswith(("REFUNDED", "REVERSED")):
            return paypal_event(event_type, sale_refund(sale, "9T2C1ELB4W6M1", "1.00"))
        return paypal_event(event_type, {**sale, "state": event_type.rsplit(".", 1)[1].lower()})
    if family == "BILLING.SUBSCRIPTION":
        status = {"CANCELLED": "CANCELLED", "SUSPENDED": "SUSPENDED", "EXPIRED": "EXPIRED",
                  "CREATED": "APPROVAL_PENDING"}.get(event_type.rsplit(".", 1)[1], "ACTIVE")
        return paypal_event(event_type, published_subscription(status))
    if family == "PAYMENT.CAPTURE":
        if event_type.endswith(("REFUNDED", "REVERSED")):
            return paypal_event(event_type, capture_refund("2GG279541U471931P", "1Y1", "1.00"))
        return paypal_event(event_type, {**capture("2GG279541U471931P"),
                                         "status": event_type.rsplit(".", 1)[1]})
    if family == "PAYMENT.PAYOUTSBATCH":
        status = event_type.rsplit(".", 1)[1]
        return paypal_event(event_type, {"batch_header": {
            "payout_batch_id": "5UXD2E8A7EBQJ", "batch_status": status,
            "sender_batch_header": {"sender_batch_id": "hub-unknown"}}})
    return item_event(event_type, "po_unknown", event_type.rsplit(".", 1)[1])


def test_every_published_type_is_handled_or_explicitly_ignored():
    for event_type in PAYPAL_TYPES:
        assert (event_type in pp.NORMALISERS or event_type in pp.IGNORED
                or event_type.startswith(("PAYMENT.PAYOUTS-ITEM.", "PAYMENT.PAYOUTSBATCH."))
                ), event_type
    assert {s["event"]["event_type"] for s in PAYPAL["events"]} <= set(PAYPAL_TYPES) | set(
        pp.IGNORED)


@pytest.mark.parametrize("event_type", PAYPAL_TYPES + ["PAYMENTS.PAYMENT.CREATED"])
def test_every_paypal_type_answers_200_once(paypal, event_type):
    paypal_client, hub = paypal
    evt = published(event_type) if event_type == "PAYMENTS.PAYMENT.CREATED" \
        else paypal_example(event_type)
    first, again = post(paypal_client, evt), post(paypal_client, evt)
    assert first.status_code == 200, first.text
    assert (first.json()["duplicate"], again.json()["duplicate"]) == (False, True)
    assert stored(hub) == 1
    if event_type in pp.IGNORED:
        assert pp.normalise(evt) == []


def test_paypals_published_sale_pays_refunds_and_reverses_to_the_cent(paypal):
    paypal_client, hub = paypal
    partner = create_partner(paypal_client)
    sold = published("PAYMENT.SALE.COMPLETED")
    sold["resource"]["custom"] = partner["code"]  # what the merchant passed to PayPal
    sale = sold["resource"]
    total = sale["amount"]["total"]
    post(paypal_client, sold)
    gross = int(total.replace(".", ""))
    earned = balance(paypal_client, partner["id"])["pending"]
    assert earned == gross * 20 // 100  # crazycall: 20% of the first payment
    post(paypal_client, paypal_event("PAYMENT.SALE.REFUNDED", sale_refund(sale, "R1", "1.00")))
    b = balance(paypal_client, partner["id"])
    assert b["voided"] == earned * 100 // gross  # pro rata, rounded down to the cent
    post(paypal_client, paypal_event("PAYMENT.SALE.REVERSED", sale_refund(sale, "R2", total)))
    assert (balance(paypal_client, partner["id"])["pending"],
            balance(paypal_client, partner["id"])["voided"]) == (0, earned)


def test_a_reversed_capture_reverses_the_whole_commission(paypal):
    paypal_client, hub = paypal
    partner = create_partner(paypal_client)
    post(paypal_client, paypal_event("PAYMENT.CAPTURE.COMPLETED",
                                     capture("3C679366HH908993F", partner["code"])))
    assert balance(paypal_client, partner["id"])["pending"] == 600
    post(paypal_client, paypal_event("PAYMENT.CAPTURE.REFUNDED",
                                     capture_refund("3C679366HH908993F", "1Y2", "3.00")))
    assert balance(paypal_client, partner["id"])["voided"] == 60
    post(paypal_client, paypal_event("PAYMENT.CAPTURE.REVERSED",
                                     capture_refund("3C679366HH908993F", "1Y3", "27.00")))
    assert (balance(paypal_client, partner["id"])["pending"],
            balance(paypal_client, partner["id"])["voided"]) == (0, 600)


def test_the_published_subscription_and_a_failed_payment(paypal):
    paypal_client, hub = paypal
    partner = create_partner(paypal_client)
    sub = published_subscription("ACTIVE", partner["code"])
    post(paypal_client, paypal_event("BILLING.SUBSCRIPTION.ACTIVATED", sub))
    post(paypal_client, paypal_event("BILLING.SUBSCRIPTION.PAYMENT.FAILED", sub,
                                     when="2026-02-05T10:00:00.000Z"))
    with hub.sessions() as s:
        states = [r.status for r in s.scalars(select(SubscriptionState).where(
            SubscriptionState.subscription_ref == sub["id"]).order_by(
            SubscriptionState.occurred_at))]
    assert states == ["active", "past_due"]
