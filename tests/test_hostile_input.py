"""Hostile input at the doors: webhooks with bad, missing, stale or future signatures, oversized
and malformed bodies, unknown types and structurally strange events behind a valid signature;
the redirect endpoint against open redirects and header injection.

None of it may produce a 5xx, a stored event that was not genuine, or money."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as stg
from sqlalchemy import func, select
from starlette.testclient import TestClient

from connectors import stripe_trigger as st
from hub.app import create_app
from hub.db.models import LedgerEntry, ProviderEvent
from tests.conftest import WEBHOOK_SECRET
from tests.payout_helpers import SANDBOX
from tests.stripe_helpers import create_partner, post_event
from tests.test_paypal_connector import VALID_SIG, Verifier, paypal_event, transmission


def _count(hub: Any, model: Any = ProviderEvent) -> int:
    with hub.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


# --- Stripe ------------------------------------------------------------------------------------

def _stripe(client: TestClient, body: str, header: str | None) -> Any:
    headers = {"Stripe-Signature": header} if header is not None else {}
    return client.post("/webhooks/stripe", content=body.encode(), headers=headers)


def test_stripe_signature_variants_are_refused(client, hub):
    evt = st.event("invoice.paid", st.invoice("in_h", customer_id="cus_h", amount=4900))
    body = json.dumps(evt)
    now = int(time.time())
    good = st.sign(body, WEBHOOK_SECRET, now)
    mac = good.split("v1=")[1]
    for header in ("", "garbage", f"t={now}", f"v1={mac}", f"t=abc,v1={mac}",
                   f"t={now},v0={mac}", f"t={now},v1={mac[:-2]}00",
                   st.sign(body, WEBHOOK_SECRET, now - 301),      # replayed too late
                   st.sign(body, WEBHOOK_SECRET, now + 3600),     # dated in the future
                   st.sign(body, "whsec_other", now),             # another endpoint's secret
                   st.sign(body + " ", WEBHOOK_SECRET, now)[:-1] + "0",
                   "t=" + "9" * 400 + ",v1=" + mac, "t=1," + "v1=aa," * 500):
        r = _stripe(client, body, header)
        assert r.status_code == 400, (header[:40], r.status_code)
        assert r.json()["error"]["code"] == "bad_signature"
    assert _stripe(client, body, None).status_code == 400
    # signed for one body, sent with another
    assert _stripe(client, body.replace("4900", "490000"), good).status_code == 400
    assert _count(hub) == 0 and _count(hub, LedgerEntry) == 0
    assert _stripe(client, body, good).status_code == 200 and _count(hub) == 1


def test_stripe_size_limit_holds_without_a_content_length(make_hub):
    hub = make_hub(server={"max_body_bytes": 1000})
    with TestClient(create_app(hub)) as c:
        def chunks() -> Iterator[bytes]:
            for _ in range(50):
                yield b"x" * 100

        r = c.post("/webhooks/stripe", content=chunks(), headers={"Stripe-Signature": "t=1,v1=0"})
        assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
        r = c.post("/webhooks/stripe", content=b"{}",
                   headers={"Stripe-Signature": "t=1,v1=0", "Content-Length": "99999999"})
        assert r.status_code in (400, 413)
    assert _count(hub) == 0


def test_stripe_valid_signature_on_non_events_is_400(client, hub):
    for body in ("[]", "null", "1", '"x"', '{"id": 5, "type": "invoice.paid"}',
                 '{"id": "evt_1"}', '{"type": "invoice.paid"}', "{" * 5000):
        r = _stripe(client, body, st.sign(body, WEBHOOK_SECRET))
        assert r.status_code == 400, (body[:20], r.status_code)
    assert _count(hub) == 0


def test_unknown_stripe_type_is_stored_ignored_and_a_replay_is_a_duplicate(client, hub):
    evt = st.event("radar.early_fraud_warning.created", {"id": "issfr_1", "object": "x"})
    first = post_event(client, evt)
    again = post_event(client, evt)
    assert first.json() == {"received": True, "duplicate": False}
    assert again.json() == {"received": True, "duplicate": True}
    with hub.sessions() as s:
        assert s.scalars(select(ProviderEvent.outcome)).all() == ["ignored"]


JSONS = stg.recursive(stg.none() | stg.booleans() | stg.integers() | stg.text(max_size=12)
                      | stg.floats(allow_nan=False),
                      lambda inner: stg.lists(inner, max_size=3)
                      | stg.dictionaries(stg.text(max_size=8), inner, max_size=4), max_leaves=12)
TYPES = stg.sampled_from(["invoice.paid", "charge.refunded", "charge.dispute.created",
                          "customer.created", "customer.updated", "checkout.session.completed",
                          "customer.subscription.updated", "invoice.payment_failed", "x.y"])
FIELDS = stg.sampled_from(["customer", "amount_paid", "currency", "metadata", "subscription",
                           "charge", "amount", "amount_refunded", "status_transitions", "lines",
                           "items", "parent", "client_reference_id", "email", "id", "created"])


@stg.composite
def strange_events(draw: Any) -> dict[str, Any]:
    """Real types with real field names holding any JSON at all."""
    obj = {draw(FIELDS): draw(JSONS) for _ in range(draw(stg.integers(0, 6)))}
    evt: dict[str, Any] = {"id": "evt_" + draw(stg.text("abcdef0123", min_size=1, max_size=12)),
                           "type": draw(TYPES), "data": {"object": obj}}
    if draw(stg.booleans()):
        evt["created"] = draw(JSONS)
    if draw(stg.booleans()):
        evt["data"] = draw(JSONS)
    return evt


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(evt=strange_events())
def test_strange_events_behind_a_valid_signature_never_500(client, evt):
    body = json.dumps(evt)
    r = _stripe(client, body, st.sign(body, WEBHOOK_SECRET))
    assert r.status_code in (200, 400, 422), (r.status_code, r.text, body)


# --- PayPal ------------------------------------------------------------------------------------

@pytest.fixture
def paypal(make_hub, backend) -> Iterator[tuple[Any, TestClient, Verifier, Any]]:
    verifier = Verifier()
    with respx.mock(assert_all_called=False) as router:
        verify = router.post(f"{SANDBOX}/v1/notifications/verify-webhook-signature")
        verify.mock(side_effect=verifier)
        router.post(f"{SANDBOX}/v1/oauth2/token").respond(200, json={
            "access_token": "A21AAFakeToken", "token_type": "Bearer", "expires_in": 32400})
        router.get(url__regex=r".*/v1/billing/subscriptions/.*").respond(404, json={})
        hub = make_hub(backend, server={"max_body_bytes": 4000}, connectors={"paypal": {
            "mode": "sandbox", "client_id": "cid", "client_secret": "csecret",
            "webhook_id": "WH-HOOK"}})
        with TestClient(create_app(hub)) as c:
            yield hub, c, verifier, verify


def test_paypal_hostile_transmissions(paypal):
    hub, c, verifier, verify = paypal
    evt = paypal_event("PAYMENT.SALE.COMPLETED", {"id": "S1", "amount": {"total": "1.00"}})
    body = json.dumps(evt)
    headers = transmission()
    for name in list(headers):  # any transmission header missing: 400, PayPal never asked
        if name != "Content-Type":
            partial = {k: v for k, v in headers.items() if k != name}
            assert c.post("/webhooks/paypal", content=body, headers=partial).status_code == 400
    assert c.post("/webhooks/paypal", content=body,
                  headers=transmission("forged")).status_code == 400
    big = json.dumps({**evt, "pad": "x" * 5000})
    assert c.post("/webhooks/paypal", content=big, headers=headers).status_code == 413
    for junk in ("{nope", "[]", '{"id": 1, "event_type": "X"}', '{"id": "WH-1"}'):
        assert c.post("/webhooks/paypal", content=junk, headers=headers).status_code == 400
    assert _count(hub) == 0
    unknown = paypal_event("CUSTOMER.DISPUTE.UPDATED.V2", {"id": "PP-D-1"})
    r = c.post("/webhooks/paypal", content=json.dumps(unknown), headers=transmission())
    assert r.status_code == 200 and r.json()["duplicate"] is False
    r = c.post("/webhooks/paypal", content=json.dumps(unknown), headers=transmission())
    assert r.status_code == 200 and r.json()["duplicate"] is True
    with hub.sessions() as s:
        assert s.scalars(select(ProviderEvent.outcome)).all() == ["ignored"]


def test_paypal_verify_failures_are_503_not_500_and_store_nothing(paypal):
    hub, c, verifier, verify = paypal
    evt = json.dumps(paypal_event("PAYMENT.SALE.COMPLETED", {"id": "S2"}))
    for answer in (httpx.Response(500, json={"name": "INTERNAL_SERVICE_ERROR"}),
                   httpx.Response(200, content=b"<html>oops"), httpx.ConnectTimeout("slow"),
                   httpx.Response(200, json={"verification_status": "MAYBE"})):
        verify.mock(side_effect=[answer] if isinstance(answer, Exception) else None,
                    return_value=None if isinstance(answer, Exception) else answer)
        r = c.post("/webhooks/paypal", content=evt, headers=transmission())
        assert r.status_code in (400, 503), (answer, r.status_code, r.text)
    assert _count(hub) == 0


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(resource=stg.dictionaries(stg.sampled_from(
    ["id", "amount", "billing_agreement_id", "custom_id", "state", "status", "create_time",
     "sale_id", "parent_payment", "links", "subscriber", "payout_item", "sender_batch_id",
     "transaction_status", "payout_batch_id", "supplementary_data"]), JSONS, max_size=6),
       kind=stg.sampled_from(["PAYMENT.SALE.COMPLETED", "PAYMENT.SALE.REFUNDED",
                              "BILLING.SUBSCRIPTION.ACTIVATED", "PAYMENT.CAPTURE.COMPLETED",
                              "PAYMENT.CAPTURE.REFUNDED", "PAYMENT.PAYOUTS-ITEM.SUCCEEDED",
                              "PAYMENT.PAYOUTS-ITEM.RETURNED", "BILLING.SUBSCRIPTION.CANCELLED"]),
       when=JSONS)
def test_strange_paypal_events_never_500(paypal, resource, kind, when):
    hub, c, verifier, verify = paypal
    evt = paypal_event(kind, resource)
    evt["create_time"] = when
    r = c.post("/webhooks/paypal", content=json.dumps(evt), headers=transmission(VALID_SIG))
    assert r.status_code in (200, 400, 413, 422), (r.status_code, r.text)


# --- the redirect ------------------------------------------------------------------------------

@pytest.mark.parametrize("code", [
    "%0d%0aSet-Cookie:%20evil=1", "x%0aLocation:%20https://evil.test", "%2f%2fevil.test",
    "..%2f..%2fadmin", "https:%2f%2fevil.test", "%5c%5cevil.test", "\u2028", "a" * 5000,
    "%00", "javascript:alert(1)"])
def test_redirect_never_leaves_the_allowed_domains_or_splits_headers(client, code):
    partner = create_partner(client)
    for path in (f"/r/{code}", f"/r/{partner['code']}?next=https://evil.test&dest=//evil.test",
                 f"/r/{partner['code']}%0d%0aX-Injected:%201"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code in (302, 303, 307, 404), (path, r.status_code)
        if r.status_code >= 400:
            continue
        location = r.headers["location"]
        assert httpx.URL(location).host in ("example.com", "www.example.com") or \
            httpx.URL(location).host.endswith(".example.com") or location.startswith("/"), location
        assert "evil" not in httpx.URL(location).host
        for name, value in r.headers.items():
            assert "\r" not in value and "\n" not in value
            assert name.lower() != "x-injected"
        assert "evil=1" not in r.headers.get("set-cookie", "").split(";")[0]
