"""PayPal in: billing events become commissions, payout events move payouts; every webhook is
checked with PayPal's verify-webhook-signature endpoint (mocked with respx)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import select
from starlette.testclient import TestClient

from connectors.paypal import duplicate_batch_id, minor_to_value
from hub.app import create_app
from hub.db.models import ProviderEvent, SubscriptionState
from hub.jobs.queue import queue_of
from hub.jobs.tick import run_tick
from hub.payouts.requests import create_payout, lock_partner
from tests.conftest import operator_headers
from tests.payout_helpers import SANDBOX, FakePaypal, at, balance_of, make_partner, pay, payouts_of

H = operator_headers()
VALID_SIG = "valid-transmission-signature"


def paypal_event(event_type: str, resource: dict[str, Any],
                 when: str = "2026-01-05T10:00:00.000Z") -> dict[str, Any]:
    return {"id": f"WH-{secrets.token_hex(8).upper()}", "event_version": "1.0",
            "create_time": when, "resource_type": event_type.split(".")[1].lower(),
            "event_type": event_type, "summary": event_type, "resource": resource,
            "links": [{"href": f"{SANDBOX}/v1/notifications/webhooks-events/x", "rel": "self",
                       "method": "GET"}]}


def transmission(sig: str = VALID_SIG) -> dict[str, str]:
    return {"PAYPAL-AUTH-ALGO": "SHA256withRSA",
            "PAYPAL-CERT-URL": f"{SANDBOX}/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77",
            "PAYPAL-TRANSMISSION-ID": secrets.token_hex(8),
            "PAYPAL-TRANSMISSION-SIG": sig, "PAYPAL-TRANSMISSION-TIME": "2026-01-05T10:00:01Z",
            "Content-Type": "application/json"}


class Verifier:
    """PayPal's verify endpoint: genuine only with the right signature, webhook id and event."""

    def __init__(self) -> None:
        self.bodies: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = request.content.decode()
        self.bodies.append(body)
        data = json.loads(body)
        ok = (data["transmission_sig"] == VALID_SIG and data["webhook_id"] == "WH-HOOK"
              and request.headers["authorization"] == "Bearer A21AAFakeToken")
        return httpx.Response(200, json={"verification_status": "SUCCESS" if ok else "FAILURE"})


@pytest.fixture
def fake() -> FakePaypal:
    return FakePaypal()


@pytest.fixture
def verifier() -> Verifier:
    return Verifier()


@pytest.fixture
def subscriptions() -> dict[str, dict[str, Any]]:
    return {}


@pytest.fixture
def paypal_api(fake: FakePaypal, verifier: Verifier,
               subscriptions: dict[str, Any]) -> Iterator[Any]:
    with respx.mock(assert_all_called=False) as router:
        router.post(f"{SANDBOX}/v1/notifications/verify-webhook-signature").mock(side_effect=verifier)
        router.get(url__regex=r".*/v1/billing/subscriptions/(?P<sid>[^/]+)$").mock(
            side_effect=lambda request, sid: httpx.Response(200, json=subscriptions[sid])
            if sid in subscriptions else httpx.Response(404, json={"name": "RESOURCE_NOT_FOUND"}))
        router.route(host="api.sandbox.paypal.com").mock(side_effect=fake.respx_side_effect)
        yield router


@pytest.fixture
def hub(make_hub: Any, backend: str, paypal_api: Any) -> Any:
    return make_hub(backend, connectors={"paypal": {
        "mode": "sandbox", "client_id": "cid", "client_secret": "csecret",
        "webhook_id": "WH-HOOK"}},
        queue={"min_backoff_ms": 20, "max_backoff_ms": 50})


@pytest.fixture
def client(hub: Any) -> Iterator[TestClient]:
    with TestClient(create_app(hub)) as c:
        yield c


def post(client: TestClient, event: dict[str, Any], sig: str = VALID_SIG) -> Any:
    return client.post("/webhooks/paypal", content=json.dumps(event), headers=transmission(sig))


def sale(sale_id: str, subscription: str, total: str = "49.00") -> dict[str, Any]:
    return {"id": sale_id, "state": "completed", "payment_mode": "INSTANT_TRANSFER",
            "amount": {"total": total, "currency": "USD", "details": {"subtotal": total}},
            "transaction_fee": {"value": "1.72", "currency": "USD"},
            "billing_agreement_id": subscription, "create_time": "2026-01-05T10:00:00Z",
            "update_time": "2026-01-05T10:00:00Z"}


def subscription(sub_id: str, code: str, status: str = "ACTIVE") -> dict[str, Any]:
    return {"id": sub_id, "status": status, "custom_id": code,
            "plan_id": "P-5ML4271244454362WXNWU5NQ",
            "subscriber": {"email_address": "buyer@customer.test", "payer_id": "QYR5Z8XDVJNXQ"},
            "status_update_time": "2026-01-05T09:00:00Z", "create_time": "2026-01-05T08:59:00Z"}


def test_subscription_sale_refund_and_cancellation(client, hub, verifier):
    partner = make_partner(hub, "crazycall")
    activated = paypal_event("BILLING.SUBSCRIPTION.ACTIVATED",
                             subscription("I-BW452GLLEP1G", partner.code))
    assert post(client, activated).status_code == 200
    paid = paypal_event("PAYMENT.SALE.COMPLETED", sale("80021663DE681814L", "I-BW452GLLEP1G"))
    assert post(client, paid).json() == {"received": True, "duplicate": False}
    assert post(client, paid).json() == {"received": True, "duplicate": True}
    assert balance_of(hub, partner.id, "USD")["pending"] == 980
    refund = paypal_event("PAYMENT.SALE.REFUNDED", {
        "id": "0P209507D6694645N", "state": "completed", "sale_id": "80021663DE681814L",
        "amount": {"total": "9.80", "currency": "USD"}, "create_time": "2026-01-09T10:00:00Z"})
    assert post(client, refund).status_code == 200
    b = balance_of(hub, partner.id, "USD")
    assert (b["pending"], b["voided"]) == (784, 196)
    lines = client.get(f"/api/v1/partners/{partner.id}/commissions", headers=H).json()["items"]
    assert {(line["amount"], line["source_event"]) for line in lines} == {
        (980, paid["id"]), (-196, refund["id"])}
    cancelled = paypal_event("BILLING.SUBSCRIPTION.CANCELLED",
                             subscription("I-BW452GLLEP1G", partner.code, "CANCELLED"))
    post(client, cancelled)
    with hub.sessions() as s:
        statuses = s.scalars(select(SubscriptionState.status).where(
            SubscriptionState.subscription_ref == "I-BW452GLLEP1G")).all()
    assert sorted(statuses) == ["active", "active", "cancelled"]
    # the event went to PayPal byte for byte, inside the verification request
    assert json.dumps(paid) in verifier.bodies[1]


def test_unknown_subscription_is_read_from_paypal_for_its_custom_id(client, hub, subscriptions):
    partner = make_partner(hub, "crazycall")
    subscriptions["I-LOOKUP"] = subscription("I-LOOKUP", partner.code)
    post(client, paypal_event("PAYMENT.SALE.COMPLETED", sale("5SALE", "I-LOOKUP", "100.00")))
    assert balance_of(hub, partner.id, "USD")["pending"] == 2000


def test_capture_completed_and_refunded_through_the_capture_link(client, hub):
    partner = make_partner(hub, "crazycall")
    capture = {"id": "2GG279541U471931P", "status": "COMPLETED", "custom_id": partner.code,
               "amount": {"currency_code": "USD", "value": "100.00"},
               "supplementary_data": {"related_ids": {"order_id": "5O190127TN364715T"}},
               "create_time": "2026-01-05T10:00:00Z"}
    post(client, paypal_event("PAYMENT.CAPTURE.COMPLETED", capture))
    refund = {"id": "1Y107995YT783435V", "status": "COMPLETED",
              "amount": {"currency_code": "USD", "value": "25.00"},
              "create_time": "2026-01-07T10:00:00Z",
              "links": [{"href": "https://api.paypal.com/v2/payments/refunds/1Y107995YT783435V",
                         "rel": "self"},
                        {"href": "https://api.paypal.com/v2/payments/captures/2GG279541U471931P",
                         "rel": "up"}]}
    post(client, paypal_event("PAYMENT.CAPTURE.REFUNDED", refund))
    b = balance_of(hub, partner.id, "USD")
    assert (b["pending"], b["voided"]) == (1500, 500)


def test_unverified_transmissions_are_refused_and_store_nothing(client, hub):
    partner = make_partner(hub, "crazycall")
    event = paypal_event("PAYMENT.CAPTURE.COMPLETED", {
        "id": "CAP1", "custom_id": partner.code,
        "amount": {"currency_code": "USD", "value": "10.00"}})
    forged = post(client, event, sig="forged")
    assert (forged.status_code, forged.json()["error"]["code"]) == (400, "bad_signature")
    bare = client.post("/webhooks/paypal", content=json.dumps(event))
    assert bare.status_code == 400
    junk = client.post("/webhooks/paypal", content=b"not json", headers=transmission())
    assert junk.status_code == 400
    with hub.sessions() as s:
        assert s.scalars(select(ProviderEvent)).all() == []


def item_event(event_type: str, payout_id: str, status: str, **extra: Any) -> dict[str, Any]:
    return paypal_event(event_type, {
        "payout_item_id": extra.pop("item_id", "8AELMXH8UB2P8"), "transaction_id": "4T5N",
        "transaction_status": status, "payout_batch_id": extra.pop("batch_id", "5UXD2E8A7EBQJ"),
        "sender_batch_id": f"hub-{payout_id}",
        "payout_item": {"sender_item_id": f"{payout_id}-1", "receiver": "ann@pay.test",
                        "amount": {"currency": "USD", "value": "60.00"}}, **extra})


def withdrawn(hub: Any, client: TestClient, amount: int = 30000) -> tuple[Any, str]:
    partner = make_partner(hub, "crazycall", paypal_email="ann@pay.test")
    pay(hub, partner.code, amount, currency="usd")
    run_tick(hub, at("2026-02-10T00:00:00"))
    payout = client.post(f"/api/v1/partners/{partner.id}/withdrawals", json={"currency": "USD"},
                         headers=H).json()
    return partner, payout["id"]


def test_unclaimed_payout_returned_after_30_days_gives_the_money_back(client, hub, fake):
    fake.item_status = "UNCLAIMED"
    fake.item_errors = {"name": "RECEIVER_UNREGISTERED", "message": "Receiver is unregistered."}
    partner, payout_id = withdrawn(hub, client)
    client.post(f"/api/v1/payouts/{payout_id}/approve", headers=H)
    queue_of(hub).join()
    [payout] = payouts_of(hub, partner.id)
    assert payout.status == "unclaimed" and balance_of(hub, partner.id, "USD")["in_payout"] == 6000
    returned = item_event("PAYMENT.PAYOUTS-ITEM.RETURNED", payout_id, "RETURNED",
                          item_id=payout.provider_item_id, batch_id=payout.provider_batch_id)
    assert post(client, returned).status_code == 200
    late = item_event("PAYMENT.PAYOUTS-ITEM.SUCCEEDED", payout_id, "SUCCESS")
    post(client, late)                                   # out of order: ignored after returned
    [payout] = payouts_of(hub, partner.id)
    assert payout.status == "returned"
    assert balance_of(hub, partner.id, "USD") == {"currency": "USD", "pending": 0, "payable": 6000,
                                                  "in_payout": 0, "paid": 0, "voided": 0}


def test_payout_webhooks_settle_a_payout_the_hub_had_not_recorded_yet(client, hub):
    partner = make_partner(hub, "crazycall", paypal_email="ann@pay.test")
    other = make_partner(hub, "crazycall", paypal_email="bob@pay.test")
    for p in (partner, other):
        pay(hub, p.code, 30000, currency="usd")
    run_tick(hub, at("2026-02-10T00:00:00"))
    ids = []
    for p in (partner, other):
        with hub.sessions() as s, s.begin():   # queued, as if the worker crashed mid-send
            payee = lock_partner(s, p.id)
            ids.append(create_payout(s, payee, hub.program("crazycall"), "USD", status="queued",
                                     method="paypal", receiver=payee.paypal_email).id)
    post(client, item_event("PAYMENT.PAYOUTS-ITEM.SUCCEEDED", ids[0], "SUCCESS"))
    denied = paypal_event("PAYMENT.PAYOUTSBATCH.DENIED", {"batch_header": {
        "payout_batch_id": "DENIEDBATCH", "batch_status": "DENIED",
        "sender_batch_header": {"sender_batch_id": f"hub-{ids[1]}"}}})
    post(client, denied)
    [paid] = payouts_of(hub, partner.id)
    [failed] = payouts_of(hub, other.id)
    assert ((paid.status, paid.provider_item_id, paid.provider_batch_id)
            == ("paid", "8AELMXH8UB2P8", "5UXD2E8A7EBQJ"))
    assert (failed.status, failed.provider_batch_id) == ("failed", "DENIEDBATCH")
    assert balance_of(hub, partner.id, "USD")["paid"] == 6000
    assert balance_of(hub, other.id, "USD")["payable"] == 6000


def test_gateway_helpers():
    assert minor_to_value(10500, "EUR") == "105.00"
    assert minor_to_value(4900, "JPY") == "4900"
    error = {"name": "USER_BUSINESS_ERROR",
             "details": [{"field": "SENDER_BATCH_ID",
                          "issue": "Batch with given sender_batch_id already exists"}],
             "links": [{"href": f"{SANDBOX}/v1/payments/payouts/5UXD2E8A7EBQJ", "rel": "self"}]}
    assert duplicate_batch_id(error) == "5UXD2E8A7EBQJ"
    assert duplicate_batch_id({"name": "INSUFFICIENT_FUNDS", "links": error["links"]}) is None


def test_a_payout_whose_webhook_never_comes_is_polled_by_the_tick(client, hub, fake):
    from datetime import timedelta

    from hub.clock import utcnow

    fake.item_status = "PENDING"
    partner, payout_id = withdrawn(hub, client)
    client.post(f"/api/v1/payouts/{payout_id}/approve", headers=H)
    queue_of(hub).join()
    assert payouts_of(hub, partner.id)[0].status == "sent"
    fake.item_status = "SUCCESS"
    assert run_tick(hub, utcnow())["payouts"]["polled"] == 0          # not stale yet
    result = run_tick(hub, utcnow() + timedelta(hours=1))
    assert result["payouts"]["polled"] == 1
    assert payouts_of(hub, partner.id)[0].status == "paid"
    assert balance_of(hub, partner.id, "USD")["paid"] == 6000
    assert len(fake.batches) == 1


@pytest.mark.parametrize("amount", [
    {"total": "49.00", "currency": 'usd"><script>'}, {"total": "49.00", "currency": "US"},
    {"total": "49.00", "currency": "XYZ"}, {"total": "NaN", "currency": "USD"},
    {"total": "abc", "currency": "USD"}, {"total": "92233720368547758.07", "currency": "USD"},
    {"total": "10000000000.00", "currency": "USD"}])
def test_a_verified_sale_with_junk_money_is_refused_and_not_stored(client, hub, amount):
    """Issue 16 finding 6, on the PayPal side: the same check as Stripe's, in the core."""
    partner = make_partner(hub, "crazycall")
    post(client, paypal_event("BILLING.SUBSCRIPTION.ACTIVATED",
                              subscription("I-JUNK", partner.code)))
    paid = paypal_event("PAYMENT.SALE.COMPLETED", {**sale("SALE-JUNK", "I-JUNK"),
                                                   "amount": amount})
    r = post(client, paid)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_event", r.text
    with hub.sessions() as s:
        assert s.scalar(select(ProviderEvent).where(ProviderEvent.event_id == paid["id"])) is None
    assert balance_of(hub, partner.id, "USD")["pending"] == 0


def test_subscription_keeps_the_end_of_the_period_paid_for(client, hub, verifier):
    """CallPage's "Expires": PayPal names the next billing time of an active subscription."""
    partner = make_partner(hub, "crazycall")
    active = {**subscription("I-EXPIRES", partner.code),
              "billing_info": {"next_billing_time": "2026-02-05T10:00:00Z"}}
    assert post(client, paypal_event("BILLING.SUBSCRIPTION.ACTIVATED", active)).status_code == 200
    cancelled = {**subscription("I-EXPIRES", partner.code, "CANCELLED"),
                 "status_update_time": "2026-01-20T09:00:00Z",
                 "billing_info": {"next_billing_time": "2026-02-05T10:00:00Z"}}
    post(client, paypal_event("BILLING.SUBSCRIPTION.CANCELLED", cancelled))
    with hub.sessions() as s:
        ends = {status: end for status, end in s.execute(
            select(SubscriptionState.status, SubscriptionState.ends_at).where(
                SubscriptionState.subscription_ref == "I-EXPIRES"))}
    assert ends == {"active": at("2026-02-05T10:00:00"), "cancelled": None}
