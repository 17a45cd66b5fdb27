"""Automatic payouts through a real Redis broker and a real Dramatiq worker; PayPal via respx."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
import redis
from sqlalchemy import update
from starlette.testclient import TestClient

from hub.app import create_app
from hub.db.models import Partner
from hub.jobs.queue import queue_of
from hub.jobs.tick import run_tick
from tests.conftest import need, operator_headers
from tests.payout_helpers import (
    FakePaypal,
    at,
    balance_of,
    make_partner,
    pay,
    payouts_of,
    policy_registry,
    programs,
    sandbox_paypal,
    wait_for,
)

REDIS_URL = os.environ.get("HUB_TEST_REDIS_URL") or "redis://127.0.0.1:6379/5"
pytestmark = pytest.mark.redis
RELEASED = at("2026-02-10T00:00:00")  # after the 30-day hold of early-January payments


@pytest.fixture(scope="module")
def redis_client() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        reachable = bool(client.ping())
    except redis.ConnectionError:
        reachable = False
    if not reachable:
        need(f"needs Redis: none at {REDIS_URL} (set HUB_TEST_REDIS_URL)")
    return client


@pytest.fixture
def namespace(redis_client: redis.Redis) -> Iterator[str]:
    """A key prefix of this test's own, so parallel runs never share a queue."""
    name = f"hubtest-{secrets.token_hex(5)}"
    yield name
    keys = list(redis_client.scan_iter(f"{name}*"))
    if keys:
        redis_client.delete(*keys)


def paypal_config(namespace: str, **queue: Any) -> dict[str, Any]:
    return {"queue": {"url": REDIS_URL, "namespace": namespace, "min_backoff_ms": 50,
                      "max_backoff_ms": 200, "max_retries": 3, "stale_seconds": 0, **queue},
            "connectors": {"paypal": {"mode": "sandbox", "client_id": "client-id",
                                      "client_secret": "client-secret", "webhook_id": "WH-1"}}}


@pytest.fixture
def fake() -> Iterator[FakePaypal]:
    with sandbox_paypal() as paypal:
        yield paypal


@pytest.fixture
def hub(make_hub: Any, backend: str, namespace: str) -> Any:
    return make_hub(backend, programs=programs(), registry=policy_registry(),
                    **paypal_config(namespace))


@pytest.fixture
def worker(hub: Any) -> Iterator[dramatiq.Worker]:
    """A real Dramatiq worker on the Redis broker, in this process (so respx sees its calls)."""
    w = dramatiq.Worker(queue_of(hub).broker, worker_threads=2, worker_timeout=50)
    w.start()
    yield w
    w.stop(timeout=5_000)



def _status(hub: Any, payout_id: str) -> str:
    from hub.db.models import Payout

    with hub.sessions() as session:
        return str(session.get(Payout, payout_id).status)


def test_an_odoopbx_like_referral_crossing_100_eur_is_paid_once(hub, worker, fake):
    referral = make_partner(hub, "odoopbx_like", kind="referral", paypal_email="ref@pay.test")
    partner = make_partner(hub, "odoopbx_like", kind="partner", paypal_email="par@pay.test")
    pay(hub, referral.code, 18000)                      # €90.00 commission: below €100
    pay(hub, partner.code, 30000)                       # €150.00: below the partner's €200
    assert run_tick(hub, RELEASED)["holds"] == {"released": 2, "payouts": 0}
    assert payouts_of(hub, referral.id) == [] and fake.creates() == []

    pay(hub, referral.code, 3000, when=at("2026-01-06T09:00:00"))  # +€15.00 -> €105.00
    assert run_tick(hub, RELEASED)["holds"] == {"released": 1, "payouts": 1}
    [payout] = payouts_of(hub, referral.id)
    assert (payout.amount, payout.currency, payout.method) == (10500, "EUR", "paypal")
    wait_for(lambda: _status(hub, payout.id) == "paid", what="payout paid")

    # again: another tick, a duplicate message for the same payout
    run_tick(hub, RELEASED)
    queue_of(hub).send("payout.send", payout.id)
    time.sleep(0.5)
    assert [p.id for p in payouts_of(hub, referral.id)] == [payout.id]
    [create] = fake.creates()
    # automatic payouts travel in the tick's PayPal batch: its id, not the payout's, is the key
    assert (payout.batch_id
            and create["sender_batch_header"]["sender_batch_id"] == f"hub-{payout.batch_id}")
    assert create["items"][0] == {"recipient_type": "EMAIL", "receiver": "ref@pay.test",
                                  "note": create["items"][0]["note"],
                                  "sender_item_id": f"{payout.id}-1",
                                  "amount": {"value": "105.00", "currency": "EUR"}}
    paths = [(m, p.rstrip("/")) for m, p, _, _ in fake.calls]
    assert paths[:2] == [("POST", "/v1/oauth2/token"), ("POST", "/v1/payments/payouts")]
    # a batch's item statuses are read with the batch (paged), not one GET per item
    batch_id = fake.batches[f"hub-{payout.batch_id}"]["id"]
    assert ("GET", f"/v1/payments/payouts/{batch_id}?page=1&page_size=1000"
                   "&total_required=true") in paths
    assert balance_of(hub, referral.id) == {"currency": "EUR", "pending": 0, "payable": 0,
                                            "in_payout": 0, "paid": 10500, "voided": 0}
    assert balance_of(hub, partner.id)["payable"] == 15000
    with TestClient(create_app(hub)) as client:
        assert client.get("/healthz").json()["queue"] == "ok"
        items = client.get(f"/api/v1/payouts?partner_id={referral.id}",
                           headers=operator_headers()).json()["items"]
        lines = client.get(f"/api/v1/partners/{referral.id}/commissions",
                           headers=operator_headers()).json()["items"]
    assert [(i["status"], i["amount"], i["provider_item_id"]) for i in items] == [
        ("paid", 10500, fake.batches[f"hub-{payout.batch_id}"]["item_id"])]
    assert {line["state"] for line in lines} == {"paid"}


def test_a_paypal_500_is_retried_with_the_same_sender_batch_id(hub, worker, fake):
    fake.fail_creates = 1
    referral = make_partner(hub, "odoopbx_like", kind="referral", paypal_email="ref@pay.test")
    pay(hub, referral.code, 20000)
    run_tick(hub, RELEASED)
    [payout] = payouts_of(hub, referral.id)
    wait_for(lambda: _status(hub, payout.id) == "paid", what="payout paid after a retry")
    creates = [(h.get("paypal-request-id"), body["sender_batch_header"]["sender_batch_id"])
               for m, p, h, body in fake.calls if m == "POST" and "payouts" in p]
    assert creates == [(f"hub-{payout.batch_id}", f"hub-{payout.batch_id}")] * 2
    assert len(fake.batches) == 1
    [payout] = payouts_of(hub, referral.id)
    assert payout.attempts == 2
    assert balance_of(hub, referral.id)["paid"] == 10000


def test_receiver_unregistered_fails_the_payout_and_returns_the_money(hub, worker, fake):
    fake.item_status = "FAILED"
    fake.item_errors = {"name": "RECEIVER_UNREGISTERED",
                        "message": "Receiver is unregistered. Funds were returned to the sender."}
    referral = make_partner(hub, "odoopbx_like", kind="referral", paypal_email="nobody@pay.test")
    pay(hub, referral.code, 24000)
    run_tick(hub, RELEASED)
    [payout] = payouts_of(hub, referral.id)
    wait_for(lambda: _status(hub, payout.id) == "failed", what="payout failed")
    [payout] = payouts_of(hub, referral.id)
    assert "RECEIVER_UNREGISTERED" in payout.failure_reason and not payout.dead_letter
    assert balance_of(hub, referral.id) == {"currency": "EUR", "pending": 0, "payable": 12000,
                                            "in_payout": 0, "paid": 0, "voided": 0}

    run_tick(hub, RELEASED)  # the same address is not paid again automatically...
    assert len(payouts_of(hub, referral.id)) == 1
    with hub.transaction() as s:  # ...until the partner fixes it
        s.execute(update(Partner).where(Partner.id == referral.id)
                  .values(paypal_email="ref@pay.test"))
    fake.item_status, fake.item_errors = "SUCCESS", None
    run_tick(hub, RELEASED)
    second = payouts_of(hub, referral.id)[1]
    wait_for(lambda: _status(hub, second.id) == "paid", what="second payout paid")
    assert (second.amount, second.receiver) == (12000, "ref@pay.test")
    assert balance_of(hub, referral.id)["paid"] == 12000


def test_exhausted_retries_dead_letter_the_payout_visibly_and_keep_the_money(hub, worker, fake):
    fake.fail_creates = 100
    referral = make_partner(hub, "odoopbx_like", kind="referral", paypal_email="ref@pay.test")
    pay(hub, referral.code, 20000)
    run_tick(hub, RELEASED)
    [payout] = payouts_of(hub, referral.id)
    wait_for(lambda: _status(hub, payout.id) == "failed", what="dead letter")
    with TestClient(create_app(hub)) as client:
        [item] = client.get(f"/api/v1/payouts?partner_id={referral.id}",
                            headers=operator_headers()).json()["items"]
        assert item["dead_letter"] is True and item["attempts"] == 4  # 1 + max_retries 3
        assert item["failure_reason"].startswith("gave up after 4 attempts: PayPal HTTP 500")
        assert balance_of(hub, referral.id)["in_payout"] == 10000  # PayPal might hold it
        fake.fail_creates = 0
        retried = client.post(f"/api/v1/payouts/{payout.id}/retry", headers=operator_headers())
        assert retried.status_code == 200 and retried.json()["status"] == "queued"
    wait_for(lambda: _status(hub, payout.id) == "paid", what="paid after the operator's retry")
    assert len(fake.batches) == 1 and balance_of(hub, referral.id)["paid"] == 10000
