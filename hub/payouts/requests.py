"""Creating payouts: a partner's withdrawal request, the automatic payout at the threshold, and the
sweep's per-partner decision for the scheduled policies. Each reserves the payable money in
the same transaction (payable -> in_payout) under the partner lock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.clock import utcnow
from hub.db.audit import record_action
from hub.db.models import LedgerEntry, Partner, Payout, new_id
from hub.db.upsert import insert_ignore
from hub.errors import NotFound, Unprocessable
from hub.ledger import entries as ledger
from hub.money import format_money
from hub.notify import notices, outbox
from hub.payouts.gateway import has_gateway, payee_of
from hub.payouts.payee import MANUAL, NOT_SENT, state_of
from hub.payouts.policy import DEFAULT_MANUAL_MONTHS, manual_period, monthly_period, policy_for
from hub.payouts.states import MONEY_BACK, OPEN, payout_json
from hub.programs import PayoutPolicy, Program
from hub.runtime import Hub, send_after_commit


def lock_partner(session: Session, partner_id: str) -> Partner:
    """Serialise payout decisions per partner (SQLite serialises all writers already).

    FOR NO KEY UPDATE, not FOR UPDATE: it excludes other payout decisions just the same, but not
    the KEY SHARE lock every ledger insert takes on its partner (the foreign key). With FOR
    UPDATE two racing `hub tick`s deadlocked: one waited for the partner while the other, whose
    release legs held that KEY SHARE, waited for the first one's release of the same line."""
    stmt = select(Partner).where(Partner.id == partner_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(key_share=True)
    partner = session.scalars(stmt).first()
    if partner is None:
        raise NotFound(f"no partner {partner_id!r}")
    return partner


def create_payout(session: Session, partner: Partner, program: Program, currency: str, *,
                  status: str, method: str, receiver: str | None = None, minimum: int = 0,
                  period: str | None = None,
                  earned_before: datetime | None = None) -> Payout | None:
    """Reserve the partner's payable money in `currency` (all of it, or what was earned before
    `earned_before`) as a new payout. None when there is less than `minimum` (or nothing), or the
    period already has its payout. `receiver` is the partner's address at the gateway that pays
    `method` (`payee_of`); None for a payout made by hand, which keeps the partner's billing details
as they are now (`payee_details`): a later change does not redirect it. The caller holds the
partner lock."""
    nets = ledger.payable_by_commission(session, partner.id, currency, earned_before)
    amount = sum(net for _, net in nets)
    if amount <= 0 or amount < minimum:
        return None
    now, payout_id = utcnow(), new_id("po")
    if not insert_ignore(session, Payout, dict(
            id=payout_id, partner_id=partner.id, program=program.name, amount=amount,
            currency=currency, status=status, method=method, period=period, attempts=0,
            receiver=receiver, payee_details=partner.billing_details, dead_letter=False,
            created_at=now, updated_at=now)):
        return None
    ledger.move_lines(session, nets, "payable", "in_payout", partner_id=partner.id,
                      currency=currency, kind="payout", payout_id=payout_id)
    payout = session.get(Payout, payout_id)
    if status == "queued":
        send_after_commit(session, "payout.send", payout_id)
    return payout


def trigger_automatic(hub: Hub, session: Session, partner_id: str, currency: str) -> Payout | None:
    """A ledger change lifted a payable balance: pay it now if the program pays automatically and
    the balance reached the threshold."""
    partner = session.get(Partner, partner_id)
    program = hub.program(partner.program) if partner else None
    if partner is None or program is None:
        return None
    policy = policy_for(hub, program, partner)
    if policy.mode != "automatic" or _automatic_blocked(session, partner, currency):
        return None
    if ledger.payable_balance(session, partner.id, currency) < max(policy.minimum, 1):
        return None
    partner = lock_partner(session, partner_id)
    method = policy.methods[0]
    receiver = payee_of(hub, partner, method)
    if receiver is None:  # an unconfirmed PayPal address: the money waits for the confirmation
        return None
    return create_payout(session, partner, program, currency, status="queued", method=method,
                         receiver=receiver, minimum=max(policy.minimum, 1))


def _automatic_blocked(session: Session, partner: Partner, currency: str) -> bool:
    """Don't pay automatically again into an address PayPal refused (or an operator rejected)
    until the partner's PayPal address changes; the money waits in `payable`."""
    last = session.scalars(select(Payout).where(
        Payout.partner_id == partner.id, Payout.currency == currency, Payout.period.is_(None))
        .order_by(Payout.created_at.desc(), Payout.id.desc()).limit(1)).first()
    return last is not None and refused_before(last.status, last.receiver, partner.paypal_email,
                                               last.failure_reason)


def refused_before(last_status: str | None, last_receiver: str | None,
                   paypal_email: str | None, last_reason: str | None = None) -> bool:
    """The rule behind `_automatic_blocked`, given the account's latest unscheduled payout. One
    held back before its first send (`payee.NOT_SENT`) was refused by nobody."""
    return (last_status in MONEY_BACK + ("unclaimed",) and last_receiver == paypal_email
            and last_reason != NOT_SENT)


def schedule(hub: Hub, session: Session, partner: Partner, currency: str,
             now: datetime) -> Payout | None:
    """The sweep's decision for one partner with payable money in `currency`."""
    program = hub.program(partner.program)
    if program is None:
        return None
    policy = policy_for(hub, program, partner)
    if policy.mode == "automatic":
        return trigger_automatic(hub, session, partner.id, currency)
    if policy.mode == "monthly":
        period, cutoff = monthly_period(now)
        gateway = next((m for m in policy.methods if payee_of(hub, partner, m)), None)
        if gateway is None and state_of(partner) == "unconfirmed" and any(
                has_gateway(hub, m) for m in policy.methods):
            return None  # paid through PayPal once the partner confirms its address
        return create_payout(session, lock_partner(session, partner.id), program, currency,
                             status="queued" if gateway else "requested",
                             method=gateway or "manual",
                             receiver=payee_of(hub, partner, gateway),
                             minimum=policy.minimum,
                             period=period, earned_before=cutoff)
    if policy.mode == "manual":
        months = policy.every_months or DEFAULT_MANUAL_MONTHS
        method = next((m for m in policy.methods if not has_gateway(hub, m)), "manual")
        return create_payout(session, lock_partner(session, partner.id), program, currency,
                             status="requested", method=method, minimum=policy.minimum,
                             period=manual_period(now, months))
    return None  # on request: the partner asks


def request_withdrawal(hub: Hub, session: Session, partner_id: str, currency: str,
                       method: str | None, actor: str) -> Payout:
    """A partner asks to be paid. Refusals are 422s that say why."""
    partner = lock_partner(session, partner_id)
    program = hub.program(partner.program)
    if program is None:
        raise Unprocessable(f"program {partner.program!r} is not enabled", code="unknown_program")
    policy = policy_for(hub, program, partner)
    method = method or _first_usable(hub, policy, partner)
    _check_request_allowed(hub, policy, partner, method)
    if policy.one_pending and _has_open_payout(session, partner.id):
        raise Unprocessable("a withdrawal is already pending", code="already_pending")
    payable = ledger.payable_balance(session, partner.id, currency)
    minimum = max(policy.minimum, 1)
    if payable < minimum:
        raise Unprocessable(f"payable balance {format_money(payable, currency)} is below the "
                            f"minimum {format_money(minimum, currency)}", code="below_minimum")
    payout = create_payout(session, partner, program, currency, status="requested", method=method,
                           receiver=payee_of(hub, partner, method), minimum=minimum)
    if payout is None:  # payable counted money the per-commission view did not (cannot happen)
        raise Unprocessable("nothing payable", code="below_minimum")
    record_action(session, actor, "payout.request", payout.id, amount=payout.amount,
                  currency=currency, method=method)
    notices.withdrawal_requested(hub, session, partner, payout)
    # The operator's systems hear of it too (a manager contacts the partner); keyed by the
    # payout, so the event is delivered once.
    outbox.emit(session, "payout.requested", f"{payout.id}:requested", payout_json(payout))
    return payout


def _check_request_allowed(hub: Hub, policy: PayoutPolicy, partner: Partner,
                           method: str | None) -> None:
    if policy.mode == "automatic":
        raise Unprocessable("this program pays automatically at the threshold",
                            code="automatic_program")
    if policy.mode != "request":
        raise Unprocessable(f"this program pays on a schedule ({policy.mode})",
                            code="scheduled_program")
    if method is not None and method not in policy.methods:
        raise Unprocessable(f"method must be one of {', '.join(policy.methods)}",
                            code="invalid_method")
    chosen = method or policy.methods[0]
    if has_gateway(hub, chosen) and payee_of(hub, partner, chosen) is None:
        if state_of(partner) == "unconfirmed":
            raise Unprocessable("the partner's PayPal address is not confirmed yet",
                                code="paypal_unconfirmed")
        raise Unprocessable("the partner has no PayPal address", code="no_paypal_email")


def _first_usable(hub: Hub, policy: PayoutPolicy, partner: Partner) -> str:
    """The method a withdrawal without one asks for: the policy's first, or for a partner paid
    by hand (`payee.MANUAL`) its first method without a gateway (the bank transfer, not
    PayPal)."""
    if partner.payout_method == MANUAL:
        return next((m for m in policy.methods if not has_gateway(hub, m)), policy.methods[0])
    return policy.methods[0]


def _has_open_payout(session: Session, partner_id: str) -> bool:
    return bool(session.scalar(select(func.count()).select_from(Payout).where(
        Payout.partner_id == partner_id, Payout.status.in_(OPEN))))


def payable_accounts(session: Session, partner_ids: list[str] | None = None) -> list[Any]:
    """(partner_id, currency, payable, program, kind, paypal_email, paypal_confirmed_at,
    payout_method) of every account with payable money, in (partner, currency) order; one
    query."""
    stmt = (select(LedgerEntry.partner_id, LedgerEntry.currency,
                   func.sum(LedgerEntry.amount).label("payable"), Partner.program, Partner.kind,
                   Partner.paypal_email, Partner.paypal_confirmed_at, Partner.payout_method)
            .join(Partner, Partner.id == LedgerEntry.partner_id)
            .where(LedgerEntry.state == "payable")
            .group_by(LedgerEntry.partner_id, LedgerEntry.currency, Partner.program,
                      Partner.kind, Partner.paypal_email, Partner.paypal_confirmed_at,
                      Partner.payout_method)
            .having(func.sum(LedgerEntry.amount) > 0)
            .order_by(LedgerEntry.partner_id, LedgerEntry.currency))
    if partner_ids is not None:
        stmt = stmt.where(LedgerEntry.partner_id.in_(partner_ids))
    return list(session.execute(stmt).all())
