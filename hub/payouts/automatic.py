"""Automatic payouts, set-based: every account over its program's threshold paid in batches.

The rules are the ones `hub.payouts.states.trigger_automatic` applies to one partner (the program's
`automatic` policy, its minimum per partner kind, a PayPal address, no automatic payout again
into an address PayPal refused); here they are applied to up to `BATCH_SIZE` accounts with a
handful of statements: lock the partners (in id order, so racing ticks cannot deadlock),
read their payable money per commission, insert the payouts, reserve their money
(payable -> in_payout, one transfer per payout, as `create_payout` writes it) and open one
PayPal batch for all of them, whose message follows the commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.clock import utcnow
from hub.db.models import Partner, Payout, new_id
from hub.db.upsert import many_rows
from hub.ledger import entries as ledger
from hub.payouts.batches import BATCH_SIZE, chunks, open_batch
from hub.payouts.payee import paypal_state
from hub.payouts.requests import payable_accounts, refused_before
from hub.runtime import Hub


@dataclass(frozen=True)
class Account:
    """A partner's payable money in one currency under an automatic policy."""

    partner_id: str
    currency: str
    program: str
    minimum: int
    method: str  # the policy's first method: the gateway that pays it


def split_accounts(hub: Hub, rows: Iterable[Any]) -> tuple[list[Account], list[tuple[str, str]]]:
    """Payable accounts (`payouts.payable_accounts` rows) into automatic PayPal ones at or over
    their minimum, and the rest (other policies, or no PayPal address or paid by hand: decided
    per partner). An automatic account whose PayPal address is not confirmed is in neither:
    its money waits for the confirmation."""
    automatic, others = [], []
    # one hook call per program and kind
    policies: dict[tuple[str, str, bool], tuple[int, str] | None] = {}
    for row in rows:
        state = paypal_state(row.paypal_email, row.paypal_confirmed_at, row.payout_method)
        key = (row.program, row.kind, state != "none")
        if key not in policies:
            policies[key] = automatic_minimum(hub, row.program, row.kind, state != "none")
        policy = policies[key]
        if policy is None:
            others.append((row.partner_id, row.currency))
        elif state == "ready" and row.payable >= policy[0]:
            automatic.append(Account(row.partner_id, row.currency, row.program, *policy))
    return automatic, others


def automatic_minimum(hub: Hub, program_name: str, kind: str,
                      has_paypal: bool) -> tuple[int, str] | None:
    """The threshold and method of an automatic payout for this partner; None when its program
    does not pay automatically (or it has no PayPal address or is paid by hand, so it is listed
    for manual payment by `payouts.policy_for`)."""
    program = hub.program(program_name)
    if program is None or not has_paypal:
        return None
    policy = hub.payout_policy(program, kind)
    return (max(policy.minimum, 1), policy.methods[0]) if policy.mode == "automatic" else None


def create_for_changed(hub: Hub, session: Session, changed: Iterable[tuple[str, str]]) -> int:
    """Automatic payouts for the accounts a ledger change lifted (the tick's hold releases), in
    the caller's transaction. Returns how many payouts were created."""
    wanted = set(changed)
    if not wanted:
        return 0
    partner_ids = sorted({partner_id for partner_id, _ in wanted})
    rows = [r for chunk in chunks(partner_ids, BATCH_SIZE)
            for r in payable_accounts(session, chunk) if (r.partner_id, r.currency) in wanted]
    automatic, _ = split_accounts(hub, rows)
    return sum(create_automatic(session, chunk) for chunk in chunks(automatic, BATCH_SIZE))


def create_automatic(session: Session, accounts: list[Account]) -> int:
    """Pay `accounts` (at most `BATCH_SIZE`, in partner order) in one batch. The balances are
    read again under the partners' locks: a racing tick that paid them first leaves nothing."""
    partner_ids = sorted({a.partner_id for a in accounts})
    emails = _lock_partners(session, partner_ids)
    nets = ledger.payable_by_account(session, partner_ids)
    last = _last_automatic(session, partner_ids)
    due = []
    for account in accounts:
        key = (account.partner_id, account.currency)
        amount = sum(net for _, net in nets.get(key, []))
        email = emails.get(account.partner_id)
        last_status, last_receiver, last_reason = last.get(key, (None, None, None))
        if amount >= account.minimum and email and not refused_before(
                last_status, last_receiver, email, last_reason):
            due.append((account, amount, email, new_id("po")))
    if not due:
        return 0
    now, rows = utcnow(), []
    for method in sorted({a.method for a, _, _, _ in due}):  # one batch per gateway
        paid_by = [d for d in due if d[0].method == method]
        batch_id = open_batch(session, method, len(paid_by))
        rows += [dict(id=payout_id, partner_id=a.partner_id, program=a.program, amount=amount,
                      currency=a.currency, status="queued", method=method, period=None,
                      attempts=0, receiver=email, dead_letter=False, batch_id=batch_id,
                      created_at=now, updated_at=now) for a, amount, email, payout_id in paid_by]
    session.execute(*many_rows(session, Payout.__table__, rows))  # one statement for all
    ledger.move_lines_many(session, [(payout_id, a.partner_id, a.currency,
                                      nets[(a.partner_id, a.currency)])
                                     for a, _, _, payout_id in due],
                           "payable", "in_payout", kind="payout")
    return len(due)


def _lock_partners(session: Session, partner_ids: list[str]) -> dict[str, str | None]:
    """`payouts.lock_partner` for many (FOR NO KEY UPDATE, in id order); their confirmed PayPal
    addresses as of the lock (None: unconfirmed, removed, or paid by hand since the selection)."""
    stmt = (select(Partner.id, Partner.paypal_email, Partner.paypal_confirmed_at,
                   Partner.payout_method).where(Partner.id.in_(partner_ids))
            .order_by(Partner.id))
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(key_share=True)
    return {pid: email if paypal_state(email, confirmed, method) == "ready" else None
            for pid, email, confirmed, method in session.execute(stmt).all()}


def _last_automatic(session: Session, partner_ids: list[str]
                    ) -> dict[tuple[str, str], tuple[str, str | None, str | None]]:
    """(status, receiver, failure reason) of each account's latest unscheduled payout."""
    ranked = (select(Payout.partner_id, Payout.currency, Payout.status, Payout.receiver,
                     Payout.failure_reason,
                     func.row_number().over(partition_by=(Payout.partner_id, Payout.currency),
                                            order_by=(Payout.created_at.desc(), Payout.id.desc()))
                     .label("n"))
              .where(Payout.partner_id.in_(partner_ids), Payout.period.is_(None)).subquery())
    rows = session.execute(select(ranked.c.partner_id, ranked.c.currency, ranked.c.status,
                                  ranked.c.receiver, ranked.c.failure_reason)
                           .where(ranked.c.n == 1)).all()
    return {(p, c): (status, receiver, reason) for p, c, status, receiver, reason in rows}
