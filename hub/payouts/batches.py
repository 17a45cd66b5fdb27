"""Payout batches: many payouts handed to a provider in one request, each settled on its own.

A batch is a row written in the transaction that creates its payouts (and reserves their
money), before any provider call. Its provider idempotency key, ``hub-<batch id>``, is both the
PayPal ``sender_batch_id`` and the ``PayPal-Request-Id``; each item's ``sender_item_id`` is
``<payout id>-1``. A resend (a retried message, the tick's sweep after a crash, an operator's
retry) rebuilds the same request from the rows, so PayPal either refuses it as a duplicate,
and the gateway follows PayPal's link to the original batch, or never had it. Item answers
(polled, or `PAYMENT.PAYOUTS-ITEM.*` webhooks) find their payout by the sender_item_id.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hub.clock import utcnow
from hub.db.models import Payout, PayoutBatch, new_id
from hub.errors import PermanentError, TransientError
from hub.facts import PayoutStatusChanged
from hub.notify import notices
from hub.payouts.gateway import (
    GatewayAnswer,
    PayoutOrder,
    batch_id_from_sender_id,
    call_gateway,
    gateway_for,
    order_of,
    payout_id_from_sender_id,
    sender_batch_id,
)
from hub.payouts.payee import NOT_SENT, unconfirmed_receivers
from hub.payouts.states import Change, transition_many
from hub.runtime import Hub, send_after_commit

# PayPal takes up to 15,000 items per batch. 1,000 is the page size of PayPal's "show payout
# batch details", so one GET reads every item's status; it also keeps a request body near
# 300 kB and a refused (or DENIED) batch to 1,000 partners. Ten requests pay 10,000 partners.
BATCH_SIZE = 1000
AWAITING = ("queued", "failed")  # failed ones only when dead-lettered: still maybe at PayPal
T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> list[list[T]]:
    """`items` cut into consecutive lists of at most `size` (order kept: locks ascend)."""
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def open_batch(session: Session, method: str, items: int) -> str:
    """A new batch row; its payouts name it in `Payout.batch_id`, and its message follows the
    commit."""
    now, batch_id = utcnow(), new_id("pb")
    session.add(PayoutBatch(id=batch_id, method=method, status="queued", items=items, attempts=0,
                            created_at=now, updated_at=now))
    session.flush()
    send_after_commit(session, "payout.send_batch", batch_id)
    return batch_id


def request_of_item(body: dict[str, Any] | None, item_id: str) -> dict[str, Any] | None:
    """One payout's share of a batch request: the header and its own item (what a payout row
    keeps as `request`, so a 1,000-item body is not stored 1,000 times)."""
    if body is None:
        return None
    items = [i for i in body.get("items") or [] if i.get("sender_item_id") == item_id]
    return {**body, "items": items}


# --- sending -------------------------------------------------------------------------------------

def send_batch(hub: Hub, batch_id: str) -> None:
    """Send a batch whose payouts still await sending; safe to run twice. A resend is the very
    request PayPal may already hold: every payout of the batch (dead-lettered ones travel again
    with it), whatever PayPal's answers already did to some, except those an operator rejected
    (having checked that PayPal never got them)."""
    prepared = _prepare(hub, batch_id)
    if prepared is None:
        return
    method, orders = prepared
    gateway, answer = call_gateway(
        hub, method, lambda gateway: gateway.send_batch(sender_batch_id(batch_id), orders),
        fail=lambda reason: _fail_all(hub, batch_id, reason),
        note=lambda reason: _note_error(hub, batch_id, reason))
    status, items = _items_quietly(gateway, answer)
    if status == "DENIED":
        answer = dataclasses.replace(answer, status="failed", provider_status=status,
                                     reason="PayPal denied the payout batch")
    _record(hub, batch_id, answer, items)


def _items_quietly(gateway: Any, answer: GatewayAnswer) -> tuple[str | None, list[GatewayAnswer]]:
    """The items' status right after the send, so that each payout row is written once; if
    PayPal is slow to say, the webhooks or the tick's poll will tell later."""
    if answer.status != "sent" or not answer.batch_id:
        return None, []
    try:
        return gateway.check_batch(answer.batch_id)  # type: ignore[no-any-return]
    except (TransientError, PermanentError):
        return None, []


def _prepare(hub: Hub, batch_id: str) -> tuple[str, list[PayoutOrder]] | None:
    """Count the attempt; the orders of the batch's waiting payouts (None: nothing to send).
    Set-based: three statements whatever the batch's size."""
    with hub.transaction() as session:
        batch = lock_batch(session, batch_id)
        mine = (Payout.batch_id == batch_id)
        if batch is not None and batch.attempts == 0:  # nothing has left for PayPal yet
            _hold_back(session, list(session.scalars(select(Payout).where(
                mine, Payout.status == "queued"))))
        if batch is None or not session.scalar(select(Payout.id).where(
                mine, Payout.status == "queued").limit(1)):
            return None
        now = utcnow()
        session.execute(update(Payout).where(mine, Payout.status == "failed", Payout.dead_letter)
                        .values(status="queued", dead_letter=False))
        session.execute(update(Payout).where(mine, Payout.status == "queued")
                        .values(attempts=Payout.attempts + 1, updated_at=now))
        rows = session.execute(select(Payout.id, Payout.amount, Payout.currency, Payout.receiver)
                               .where(mine, Payout.status != "rejected").order_by(Payout.id)).all()
        batch.attempts, batch.updated_at = batch.attempts + 1, now
        return batch.method, [order_of(*row, hub_batch=batch_id) for row in rows]


def _hold_back(session: Session, payouts: list[Payout]) -> None:
    """Reject (money back to payable, reason `payee.NOT_SENT`) the payouts whose PayPal address
    is no longer their partner's confirmed one, before PayPal ever sees them: a resend leaves
    rejected payouts out, as it does those an operator rejected."""
    held = unconfirmed_receivers(session, payouts)
    if held:
        transition_many(session, [Change(p, "rejected", reason=NOT_SENT) for p in held])


def lock_batch(session: Session, batch_id: str) -> PayoutBatch | None:
    """The batch row, locked: whatever moves a batch's payouts together (send, answers, polls,
    batch webhooks) runs one at a time per batch, so their row locks never cross."""
    stmt = select(PayoutBatch).where(PayoutBatch.id == batch_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def _awaiting(session: Session, batch_id: str, *, lock: bool = False) -> list[Payout]:
    stmt = (select(Payout).where(Payout.batch_id == batch_id, Payout.status.in_(AWAITING))
            .order_by(Payout.id))
    if lock and session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return [p for p in session.scalars(stmt) if p.status == "queued" or p.dead_letter]


def _record(hub: Hub, batch_id: str, answer: GatewayAnswer, items: list[GatewayAnswer]) -> None:
    """PayPal's answer to the batch moves every payout sent with it (sent, dry_run, failed),
    then the items' answers each their own payout, in one transaction."""
    with hub.transaction() as session:
        batch = lock_batch(session, batch_id)
        assert batch is not None
        batch.status, batch.updated_at = answer.status, utcnow()
        batch.provider_batch_id = answer.batch_id or batch.provider_batch_id
        batch.provider_status = answer.provider_status or batch.provider_status
        batch.sent_at = batch.sent_at or (batch.updated_at if answer.status == "sent" else None)
        payouts = batch_payouts(session, batch_id)
        for payout in payouts:
            payout.provider_batch_id = answer.batch_id or payout.provider_batch_id
            share = request_of_item(answer.request, f"{payout.id}-1")
            if share and share["items"]:  # (an operator-rejected payout was left out)
                payout.request = share
        changes = [Change(p, answer.status, answer.reason, answer.provider_status)
                   for p in payouts if p.status == "queued"]
        transition_many(session, changes + _item_changes(payouts, items))


def _fail_all(hub: Hub, batch_id: str, reason: str) -> None:
    with hub.transaction() as session:
        batch = lock_batch(session, batch_id)
        if batch is not None:
            batch.status, batch.failure_reason = "failed", reason[:500]
        transition_many(session, [Change(p, "failed", reason[:500])
                                  for p in _awaiting(session, batch_id, lock=True)])


def _note_error(hub: Hub, batch_id: str, reason: str) -> None:
    with hub.transaction() as session:
        session.execute(update(Payout).where(Payout.batch_id == batch_id,
                                             Payout.status == "queued")
                        .values(failure_reason=f"retrying: {reason}"[:500], updated_at=utcnow()))
        session.execute(update(PayoutBatch).where(PayoutBatch.id == batch_id)
                        .values(failure_reason=f"retrying: {reason}"[:500]))


def batch_dead_letter(hub: Hub, message: dict[str, Any], retry_info: dict[str, Any]) -> None:
    """`payout.send_batch` ran out of retries: show each payout to the operator, keep the money
    reserved (PayPal may hold the batch)."""
    batch_id = (message.get("args") or [None])[0]
    if batch_id:
        with hub.transaction() as session:
            notices.payouts_dead_lettered(hub, session, dead_letter_all(session, batch_id))


def dead_letter_all(session: Session, batch_id: str) -> list[Payout]:
    """Mark the batch's queued payouts dead-lettered; returns them (for the operator's mail)."""
    lock_batch(session, batch_id)
    given_up = list(session.scalars(select(Payout).where(Payout.batch_id == batch_id,
                                                         Payout.status == "queued")))
    for payout in given_up:
        last = (payout.failure_reason or "").removeprefix("retrying: ")
        payout.status, payout.dead_letter, payout.updated_at = "failed", True, utcnow()
        payout.failure_reason = (f"gave up after {payout.attempts} attempts: {last}")[:500]
    return given_up


def batch_payouts(session: Session, batch_id: str) -> list[Payout]:
    """Every payout of the batch, locked: racing answers (the send, a poll, webhooks) apply one
    after the other, as they do for a payout sent alone."""
    stmt = select(Payout).where(Payout.batch_id == batch_id).order_by(Payout.id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return list(session.scalars(stmt))


# --- item answers --------------------------------------------------------------------------------

def check_batch(hub: Hub, batch_id: str) -> None:
    """Poll the gateway for a sent batch and settle each of its payouts by its own item."""
    with hub.sessions() as session:
        batch = session.get(PayoutBatch, batch_id)
        if batch is None or not batch.provider_batch_id:
            return
        method, provider_batch_id = batch.method, batch.provider_batch_id
    gateway = gateway_for(hub, method)
    if gateway is None:
        return
    status, items = gateway.check_batch(provider_batch_id)
    if status == "DENIED":
        _fail_all(hub, batch_id, "PayPal denied the payout batch")
        return
    with hub.transaction() as session:
        lock_batch(session, batch_id)
        settle_items(session, batch_id, items)


def settle_items(session: Session, batch_id: str, items: list[GatewayAnswer]) -> int:
    """Apply item answers to the batch's payouts (each by its sender_item_id); an item naming
    a payout outside the batch is ignored. Returns how many payouts moved."""
    return transition_many(session, _item_changes(batch_payouts(session, batch_id), items))


def _item_changes(payouts: list[Payout], items: list[GatewayAnswer]) -> list[Change]:
    """One change per payout an item answer names (by its sender_item_id), noting PayPal's ids
    on the payout."""
    by_payout = {payout_id_from_sender_id(a.sender_item_id): a for a in items}
    changes = []
    for payout in payouts:
        answer = by_payout.get(payout.id)
        if answer is None:
            continue
        payout.provider_item_id = answer.item_id or payout.provider_item_id
        payout.provider_batch_id = answer.batch_id or payout.provider_batch_id
        changes.append(Change(payout, answer.status, answer.reason, answer.provider_status))
    return changes


# --- webhooks about a whole batch ------------------------------------------------------------

def batch_of_fact(session: Session, fact: PayoutStatusChanged) -> PayoutBatch | None:
    """The hub batch a provider fact is about as a whole (a PAYMENT.PAYOUTSBATCH.* event):
    by our sender_batch_id, else by PayPal's batch id. None for a fact about one payout."""
    if fact.sender_id and not fact.sender_id.startswith("hub-"):
        return None  # a sender_item_id: one payout
    batch_id = batch_id_from_sender_id(fact.sender_id)
    if batch_id is not None:
        return session.get(PayoutBatch, batch_id)
    if fact.sender_id is None and fact.batch_id and not fact.item_id:
        return session.scalars(select(PayoutBatch).where(
            PayoutBatch.provider_batch_id == fact.batch_id)).first()
    return None


def apply_batch_fact(session: Session, batch: PayoutBatch, fact: PayoutStatusChanged) -> None:
    """A batch denied fails each of its waiting payouts; any other batch news is a reason to
    poll its items."""
    lock_batch(session, batch.id)
    if fact.batch_id and not batch.provider_batch_id:
        batch.provider_batch_id = fact.batch_id
    payouts = batch_payouts(session, batch.id)
    for payout in payouts:
        if fact.batch_id and not payout.provider_batch_id:
            payout.provider_batch_id = fact.batch_id
    if fact.status:
        batch.status, batch.provider_status = fact.status, fact.provider_status
        transition_many(session, [Change(p, fact.status, fact.reason, fact.provider_status)
                                  for p in payouts if p.status in ("queued", "sent")
                                  or (p.status == "failed" and p.dead_letter)])
    if fact.check:
        send_after_commit(session, "payout.check_batch", batch.id)
