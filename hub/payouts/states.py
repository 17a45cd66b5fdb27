"""Payouts: when a partner is paid (the program's policy) and how (the mechanics, here).

A payout is a row first: creating it reserves the partner's payable money (payable -> in_payout,
per commission) in the same transaction, so nothing is paid twice; a message to the
`payout.send` job follows the commit. The job calls the method's gateway (a connector, e.g.
PayPal) with ids derived from the payout id, so a retry after a crash cannot pay twice, and
records the answer. Paid moves the money to ``paid``; failed, returned and rejected put it back
into ``payable``.

Statuses: requested -> (approved | queued) ; queued -> sent -> paid | failed | returned |
unclaimed ; unclaimed -> paid | returned ; queued -> dry_run | rejected (held back, never sent) ;
requested/approved -> paid (by hand) | rejected. A `failed` payout with `dead_letter` set is one
the send job gave up on: PayPal may or may not hold it, so its money stays reserved until the
operator retries or rejects it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.clock import utcnow
from hub.db.audit import record_action
from hub.db.models import Payout
from hub.errors import Conflict, NotFound, Unprocessable
from hub.ledger import entries as ledger
from hub.notify import notices, outbox
from hub.payouts.gateway import sender_batch_of
from hub.runtime import send_after_commit

OPEN = ("requested", "approved", "queued", "sent", "unclaimed", "dry_run")


MONEY_BACK = ("failed", "returned", "rejected")


# Which status may follow which; the provider's answers arrive late, twice and out of order.
NEXT: dict[str, set[str]] = {
    "requested": {"approved", "queued", "paid", "rejected"},
    "approved": {"paid", "rejected"},
    # queued -> rejected: held back before its first send, its PayPal address no longer
    # confirmed (`payee.unconfirmed_receivers`); an operator cannot reject a queued payout
    "queued": {"sent", "paid", "failed", "returned", "unclaimed", "dry_run", "rejected"},
    "sent": {"paid", "failed", "returned", "unclaimed"},
    "unclaimed": {"paid", "returned", "failed"},
    "paid": {"returned"},
    "dry_run": {"rejected"},
}


WEBHOOK_EVENT = {"paid": "payout.paid", "failed": "payout.failed", "returned": "payout.failed"}


@dataclass(frozen=True)
class Change:
    """One payout to move to `status` (see `transition`)."""

    payout: Payout
    status: str
    reason: str | None = None
    provider_status: str | None = None
    reference: str | None = None


def transition(session: Session, payout: Payout, status: str, *, reason: str | None = None,
               provider_status: str | None = None, reference: str | None = None) -> bool:
    """Move a payout to `status` and its money with it; False (a no-op) when not allowed from
    where it is, e.g. a late PENDING after paid, or the same answer twice."""
    return transition_many(session, [Change(payout, status, reason, provider_status,
                                            reference)]) == 1


def transition_many(session: Session, changes: list[Change]) -> int:
    """`transition` for many payouts (a batch's answers): the money of all of them moves with
    one query and one INSERT per kind of move. Returns how many payouts moved."""
    moves: dict[tuple[str, str, str], list[Payout]] = {}
    moved: list[Payout] = []
    for change in changes:
        previous = _apply_status(change)
        if previous is None:
            continue
        move = money_move(previous, change.status)
        if move is not None:
            moves.setdefault(move, []).append(change.payout)
        moved.append(change.payout)
        notices.payout_moved(session, change.payout, previous)
    for (source, target, kind), payouts in moves.items():
        held = ledger.held_by_payouts(session, [p.id for p in payouts], source)
        ledger.move_lines_many(session, [(p.id, p.partner_id, p.currency, held.get(p.id, []))
                                         for p in payouts], source, target, kind=kind)
    for payout in {p.id: p for p in moved}.values():  # a payout may move twice (sent, paid)
        if payout.status in WEBHOOK_EVENT:
            outbox.emit(session, WEBHOOK_EVENT[payout.status], f"{payout.id}:{payout.status}",
                              payout_json(payout))
    return len({p.id for p in moved})


def money_move(previous: str, status: str) -> tuple[str, str, str] | None:
    """Which account a payout's money leaves and enters (and the legs' kind) when it moves from
    `previous` to `status`; None when the money stays where it is."""
    if status == "paid":
        return ("in_payout", "paid", "payout_paid")
    if status in MONEY_BACK:
        return ("paid" if previous == "paid" else "in_payout", "payable", "payout_return")
    return None


def _apply_status(change: Change) -> str | None:
    """The payout row's side of a transition; returns the previous status (None: not allowed)."""
    payout, status = change.payout, change.status
    reason, provider_status, reference = change.reason, change.provider_status, change.reference
    if status == payout.status or status not in _allowed_next(payout):
        return None
    previous, now = payout.status, utcnow()
    payout.status, payout.updated_at, payout.dead_letter = status, now, False
    payout.provider_status = provider_status or payout.provider_status
    if reason or status in MONEY_BACK:
        payout.failure_reason = reason
    elif status == "paid":
        payout.failure_reason = None  # earlier "retrying: ..." notes no longer apply
    payout.reference = reference or payout.reference
    if status == "sent":
        payout.sent_at = now
    if status in ("paid",) + MONEY_BACK:
        payout.settled_at = now
    return previous


def _allowed_next(payout: Payout) -> set[str]:
    """A dead-lettered payout may still be at PayPal: it moves like a queued one, and an operator
    may also reject it (having checked PayPal)."""
    if payout.status == "failed" and payout.dead_letter:
        return NEXT["queued"] | {"rejected"}
    return NEXT.get(payout.status, set())


def get_payout(session: Session, payout_id: str, *, lock: bool = False) -> Payout:
    stmt = select(Payout).where(Payout.id == payout_id)
    if lock and session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    payout = session.scalars(stmt).first()
    if payout is None:
        raise NotFound(f"no payout {payout_id!r}")
    return payout


def operator_action(session: Session, payout_id: str, action: str, actor: str, *,
                    reference: str | None = None, reason: str | None = None) -> Payout:
    """approve, reject, mark-paid or retry, audited. Refused (409) from the wrong status."""
    payout = get_payout(session, payout_id, lock=True)
    target = _operator_target(payout, action)
    if action == "mark-paid" and not reference:
        raise Unprocessable("reference is required", code="missing_field")
    if action == "retry":
        payout.status, payout.dead_letter, payout.updated_at = "queued", False, utcnow()
    elif not transition(session, payout, target, reason=reason, reference=reference):
        raise Conflict(f"cannot {action} a payout that is {payout.status}", code="invalid_state")
    if target == "queued":
        send_after_commit(session, "payout.send", payout.id)
    record_action(session, actor, f"payout.{action}", payout.id, reference=reference,
                  reason=reason)
    return payout


def _operator_target(payout: Payout, action: str) -> str:
    if action == "approve":
        return "queued" if payout.receiver else "approved"  # a gateway pays it, or a person
    if action == "retry":
        if not (payout.status == "failed" and payout.dead_letter):
            raise Conflict("only a dead-lettered payout can be retried", code="invalid_state")
        return "queued"
    if action in ("reject", "mark-paid") and payout.status in ("queued", "sent", "unclaimed"):
        raise Conflict(f"the payout is {payout.status} at PayPal; wait for its answer",
                       code="invalid_state")
    return {"reject": "rejected", "mark-paid": "paid"}[action]


def payout_json(p: Payout) -> dict[str, Any]:
    return {"id": p.id, "partner_id": p.partner_id, "program": p.program, "amount": p.amount,
            "currency": p.currency, "status": p.status, "method": p.method,
            "receiver": p.receiver, "reference": p.reference, "period": p.period,
            "sender_batch_id": sender_batch_of(p), "batch_id": p.batch_id,
            "provider_batch_id": p.provider_batch_id,
            "provider_item_id": p.provider_item_id, "provider_status": p.provider_status,
            "failure_reason": p.failure_reason, "attempts": p.attempts,
            "dead_letter": p.dead_letter, "request": p.request,
            "created_at": p.created_at.isoformat(), "updated_at": p.updated_at.isoformat(),
            "sent_at": p.sent_at.isoformat() if p.sent_at else None,
            "settled_at": p.settled_at.isoformat() if p.settled_at else None}
