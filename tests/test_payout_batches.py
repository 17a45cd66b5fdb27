"""Automatic payouts in multi-item PayPal batches: each item settles its own payout, a crash after
PayPal accepted a batch is resent as the same request and followed to the original, and the batch
size caps every request. PayPal is the fake through respx; storage runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from connectors import paypal as paypal_connector
from hub.clock import utcnow
from hub.db.models import LedgerEntry, PayoutBatch
from hub.jobs.queue import queue_of
from hub.jobs.tick import run_tick
from hub.payouts import automatic as automatic_payouts
from hub.payouts import batches as payout_batches
from hub.payouts.batches import chunks, request_of_item
from hub.payouts.requests import refused_before
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
)
from tests.test_paypal_connector import paypal_event

RELEASED = at("2026-02-10T00:00:00")
PAYPAL = {"mode": "sandbox", "client_id": "cid", "client_secret": "cs", "webhook_id": "WH"}
UNREGISTERED = {"name": "RECEIVER_UNREGISTERED", "message": "Receiver is unregistered."}


@pytest.fixture
def fake() -> Iterator[FakePaypal]:
    with sandbox_paypal() as paypal:
        yield paypal


@pytest.fixture
def hub(make_hub: Any, backend: str, fake: FakePaypal) -> Any:
    return make_hub(backend, programs=programs(), registry=policy_registry(),
                    connectors={"paypal": PAYPAL},
                    queue={"min_backoff_ms": 10, "max_backoff_ms": 30, "stale_seconds": 0})


def referrals_earning(hub: Any, *names: str, amount: int = 24000) -> list[Any]:
    """odoopbx-like referrals (automatic at €100), each earning half of `amount`."""
    partners = [make_partner(hub, "odoopbx_like", kind="referral", paypal_email=f"{n}@pay.test")
                for n in names]
    for partner in partners:
        pay(hub, partner.code, amount)
    return partners


def status_of(hub: Any, partner: Any) -> str:
    [payout] = payouts_of(hub, partner.id)
    return str(payout.status)


def item_webhook(payout: Any, event: str, status: str, **extra: Any) -> dict[str, Any]:
    """PAYMENT.PAYOUTS-ITEM.<event> for one item of a multi-item batch."""
    return paypal_event(f"PAYMENT.PAYOUTS-ITEM.{event}", {
        "payout_item_id": payout.provider_item_id, "transaction_status": status,
        "payout_batch_id": payout.provider_batch_id, "sender_batch_id": f"hub-{payout.batch_id}",
        "payout_item": {"sender_item_id": f"{payout.id}-1", "receiver": payout.receiver,
                        "amount": {"currency": "EUR", "value": "120.00"}}, **extra})


# --- pure parts ------------------------------------------------------------------------------

@pytest.mark.parametrize("items, size, expected", [
    ([], 2, []),
    ([1], 2, [[1]]),
    ([1, 2], 2, [[1, 2]]),
    ([1, 2, 3, 4, 5], 2, [[1, 2], [3, 4], [5]]),
])
def test_chunks_keep_order_and_cap_the_size(items, size, expected):
    assert chunks(items, size) == expected


@pytest.mark.parametrize("last_status, last_receiver, email, refused", [
    (None, None, "a@pay.test", False),
    ("paid", "a@pay.test", "a@pay.test", False),
    ("failed", "a@pay.test", "a@pay.test", True),
    ("returned", "a@pay.test", "a@pay.test", True),
    ("unclaimed", "a@pay.test", "a@pay.test", True),
    ("rejected", "a@pay.test", "a@pay.test", True),
    ("failed", "old@pay.test", "a@pay.test", False),  # the partner changed the address
])
def test_no_automatic_payout_again_into_a_refused_address(last_status, last_receiver, email,
                                                          refused):
    assert refused_before(last_status, last_receiver, email) is refused


def test_a_payout_keeps_its_own_share_of_the_batch_request():
    body = {"sender_batch_header": {"sender_batch_id": "hub-pb_1"},
            "items": [{"sender_item_id": "po_a-1"}, {"sender_item_id": "po_b-1"}]}
    assert request_of_item(body, "po_b-1") == {
        "sender_batch_header": {"sender_batch_id": "hub-pb_1"},
        "items": [{"sender_item_id": "po_b-1"}]}


def test_the_gateway_reads_a_large_batch_page_by_page(fake, monkeypatch):
    monkeypatch.setattr(paypal_connector, "ITEMS_PAGE", 2)
    gateway = paypal_connector.PaypalGateway(paypal_connector.PaypalConfig(**PAYPAL))
    orders = [payout_batches.order_of(f"po_{n}", 1000 + n, "EUR", f"p{n}@pay.test",
                                      hub_batch="pb_x") for n in range(5)]
    sent = gateway.send_batch("hub-pb_x", orders)
    status, items = gateway.check_batch(str(sent.batch_id))
    assert status == "SUCCESS"
    assert [a.sender_item_id for a in items] == [f"po_{n}-1" for n in range(5)]
    pages = [p for m, p, _, _ in fake.calls if m == "GET" and "/payouts/" in p]
    assert len(pages) == 3 and all("page_size=2" in p for p in pages)


# --- a multi-item batch ------------------------------------------------------------------------

def test_one_batch_with_mixed_item_outcomes_settles_each_payout_on_its_own(hub, fake):
    ann, bob, cat, dan = referrals_earning(hub, "ann", "bob", "cat", "dan")
    fake.item_outcomes = {"bob@pay.test": ("FAILED", UNREGISTERED),
                          "cat@pay.test": ("UNCLAIMED", UNREGISTERED),
                          "dan@pay.test": ("PENDING", None)}
    assert run_tick(hub, RELEASED)["holds"]["payouts"] == 4
    [batch] = fake.batches.values()
    assert len(batch["items"]) == 4 and len(fake.creates()) == 1  # one request for all four

    assert [status_of(hub, p) for p in (ann, bob, cat, dan)] == ["paid", "failed", "unclaimed",
                                                                  "sent"]
    [failed] = payouts_of(hub, bob.id)
    assert "RECEIVER_UNREGISTERED" in failed.failure_reason
    assert balance_of(hub, ann.id)["paid"] == 12000
    assert balance_of(hub, bob.id)["payable"] == 12000 and balance_of(hub, bob.id)["in_payout"] == 0
    assert (balance_of(hub, cat.id)["in_payout"] == 12000
            and balance_of(hub, dan.id)["in_payout"] == 12000)

    # later, item by item, PayPal's webhooks (in any order, one of them twice)
    [unclaimed], [pending] = payouts_of(hub, cat.id), payouts_of(hub, dan.id)
    for event in (item_webhook(pending, "SUCCEEDED", "SUCCESS"),
                  item_webhook(unclaimed, "RETURNED", "RETURNED"),
                  item_webhook(pending, "SUCCEEDED", "SUCCESS")):
        paypal_connector.process(hub, event)
    batch_done = paypal_event("PAYMENT.PAYOUTSBATCH.SUCCESS", {"batch_header": {
        "payout_batch_id": batch["id"], "batch_status": "SUCCESS",
        "sender_batch_header": {"sender_batch_id": f"hub-{pending.batch_id}"}}})
    paypal_connector.process(hub, batch_done)  # news about the whole batch: a poll, no change
    queue_of(hub).join()

    assert [status_of(hub, p) for p in (ann, bob, cat, dan)] == ["paid", "failed", "returned",
                                                                  "paid"]
    expected = {ann.id: (0, 12000), bob.id: (12000, 0), cat.id: (12000, 0), dan.id: (0, 12000)}
    for partner_id, (payable, paid) in expected.items():
        b = balance_of(hub, partner_id)
        assert (b["payable"], b["in_payout"], b["paid"]) == (payable, 0, paid)


def test_a_denied_batch_fails_every_payout_in_it_and_gives_the_money_back(hub, fake,
                                                                           monkeypatch):
    monkeypatch.setattr(payout_batches, "send_after_commit", lambda *args: None)
    partners = referrals_earning(hub, "ann", "bob")
    run_tick(hub, RELEASED)  # the batch is queued; PayPal's webhook comes first
    [payout] = payouts_of(hub, partners[0].id)
    denied = paypal_event("PAYMENT.PAYOUTSBATCH.DENIED", {"batch_header": {
        "payout_batch_id": "DENIEDBATCH", "batch_status": "DENIED",
        "sender_batch_header": {"sender_batch_id": f"hub-{payout.batch_id}"}}})
    paypal_connector.process(hub, denied)
    for partner in partners:
        [payout] = payouts_of(hub, partner.id)
        assert (payout.status, payout.provider_batch_id) == ("failed", "DENIEDBATCH")
        assert balance_of(hub, partner.id)["payable"] == 12000
        assert balance_of(hub, partner.id)["in_payout"] == 0


# --- crash safety --------------------------------------------------------------------------------

def test_a_crash_after_paypal_accepted_a_batch_resends_it_and_pays_each_once(hub, fake,
                                                                             monkeypatch):
    partners = referrals_earning(hub, "ann", "bob", "cat")
    # The tick commits the batch, then the process dies: its message is lost...
    monkeypatch.setattr(payout_batches, "send_after_commit", lambda *args: None)
    assert run_tick(hub, RELEASED)["holds"]["payouts"] == 3
    monkeypatch.undo()
    with hub.sessions() as s:
        [batch_id] = s.scalars(select(PayoutBatch.id)).all()

    # ...or a worker sends it and dies after PayPal accepted, before recording anything
    def crash(*args: Any) -> None:
        raise RuntimeError("worker killed")

    monkeypatch.setattr(payout_batches, "_record", crash)
    with pytest.raises(RuntimeError):
        payout_batches.send_batch(hub, batch_id)
    monkeypatch.undo()
    assert len(fake.batches) == 1 and {status_of(hub, p) for p in partners} == {"queued"}
    # PayPal's webhook for one item may even come first: that payout is paid by it...
    [entry] = [e for e in next(iter(fake.batches.values()))["items"]
               if e["item"]["receiver"] == "ann@pay.test"]
    paypal_connector.process(hub, paypal_event("PAYMENT.PAYOUTS-ITEM.SUCCEEDED", {
        "payout_item_id": entry["item_id"], "transaction_status": "SUCCESS",
        "payout_batch_id": next(iter(fake.batches.values()))["id"], "payout_item": entry["item"]}))
    assert status_of(hub, partners[0]) == "paid"

    run_tick(hub, utcnow() + timedelta(minutes=1))  # the sweep re-sends what is stuck
    queue_of(hub).join()

    first, second = fake.creates()
    assert first == second  # the same sender_batch_id and the very same items (ann's too)
    assert first["sender_batch_header"]["sender_batch_id"] == f"hub-{batch_id}"
    assert len(fake.batches) == 1  # PayPal refused the resend; the hub followed to the original
    original = fake.batches[f"hub-{batch_id}"]
    for partner in partners:
        [payout] = payouts_of(hub, partner.id)
        assert (payout.status, payout.provider_batch_id) == ("paid", original["id"])
        assert payout.attempts == (1 if partner is partners[0] else 2)
        assert balance_of(hub, partner.id) == {"currency": "EUR", "pending": 0, "payable": 0,
                                               "in_payout": 0, "paid": 12000, "voided": 0}
    with hub.sessions() as s:  # paid once: one payout_paid transfer per payout
        transfers = s.scalar(select(func.count(func.distinct(LedgerEntry.transfer_id))).where(
            LedgerEntry.kind == "payout_paid"))
    assert transfers == 3


def test_an_operator_retry_of_a_dead_lettered_payout_resends_its_whole_batch(hub, fake):
    fake.fail_creates = 100
    partners = referrals_earning(hub, "ann", "bob")
    run_tick(hub, RELEASED)
    queue_of(hub).join()
    assert {status_of(hub, p) for p in partners} == {"failed"}
    assert all(payouts_of(hub, p.id)[0].dead_letter for p in partners)
    fake.fail_creates = 0
    from hub.payouts.states import operator_action
    with hub.transaction() as s:
        operator_action(s, payouts_of(hub, partners[0].id)[0].id, "retry", "operator")
    queue_of(hub).join()
    assert {status_of(hub, p) for p in partners} == {"paid"}
    [batch] = fake.batches.values()
    assert len(batch["items"]) == 2


# --- the size cap --------------------------------------------------------------------------------

def test_the_batch_size_caps_every_request(hub, fake, monkeypatch):
    cap = 2
    monkeypatch.setattr(payout_batches, "BATCH_SIZE", cap)
    monkeypatch.setattr(automatic_payouts, "BATCH_SIZE", cap)
    partners = referrals_earning(hub, *[f"p{n}" for n in range(2 * cap + 1)])
    assert run_tick(hub, RELEASED)["holds"]["payouts"] == 2 * cap + 1
    queue_of(hub).join()
    assert sorted(len(b["items"]) for b in fake.batches.values()) == [1, cap, cap]
    with hub.sessions() as s:
        assert sorted(s.scalars(select(PayoutBatch.items))) == [1, cap, cap]
    assert {status_of(hub, p) for p in partners} == {"paid"}


def test_the_sweep_batches_what_the_release_left_over(hub, fake, monkeypatch):
    """Accounts already payable when the tick starts (say, a release whose payouts were not
    made) are paid by the sweep, in capped batches too."""
    from hub.jobs.tick import release_holds
    from hub.payouts.sweep import sweep

    monkeypatch.setattr(payout_batches, "BATCH_SIZE", 2)
    partners = referrals_earning(hub, "ann", "bob", "cat")
    with monkeypatch.context() as m:
        m.setattr(automatic_payouts, "create_for_changed", lambda *args: 0)
        assert release_holds(hub, RELEASED) == {"released": 3, "payouts": 0}
    assert sweep(hub, RELEASED)["created"] == 3
    queue_of(hub).join()
    assert sorted(len(b["items"]) for b in fake.batches.values()) == [1, 2]
    assert {status_of(hub, p) for p in partners} == {"paid"}
    assert sweep(hub, RELEASED)["created"] == 0  # nothing payable is left
