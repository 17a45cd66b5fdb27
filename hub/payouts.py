"""Payouts: when a partner is paid (the program's policy) and how (the mechanics, here).

A payout is a row first: creating it reserves the partner's payable money (payable -> in_payout,
per commission) in the same transaction, so nothing is paid twice; a message to the
`payout.send` job follows the commit. The job calls the method's gateway (a connector, e.g.
PayPal) with ids derived from the payout id, so a retry after a crash cannot pay twice, and
records the answer. Paid moves the money to ``paid``; failed, returned and rejected put it back
into ``payable``.

Statuses: requested -> (approved | queued) ; queued -> sent -> paid | failed | returned |
unclaimed ; unclaimed -> paid | returned ; queued -> dry_run ; requested/approved -> paid (by hand)
| rejected. A `failed` payout with `dead_letter` set is one the send job gave up on: PayPal may or
may not hold it, so its money stays reserved until the operator retries or rejects it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import ledger, webhooks_out
from .audit import record_action
from .clock import utcnow
from .db.models import LedgerEntry, Partner, Payout, new_id
from .db.upsert import insert_ignore
from .errors import Conflict, NotFound, Unprocessable
from .facts import PayoutStatusChanged
from .money import format_money
from .programs import PayoutPolicy, Program
from .queue import PermanentError, TransientError, job, queue_of, send_after_commit
from .runtime import Hub

OPEN = ("requested", "approved", "queued", "sent", "unclaimed", "dry_run")
MONEY_BACK = ("failed", "returned", "rejected")
# Which status may follow which; the provider's answers arrive late, twice and out of order.
NEXT: dict[str, set[str]] = {
    "requested": {"approved", "queued", "paid", "rejected"},
    "approved": {"paid", "rejected"},
    "queued": {"sent", "paid", "failed", "returned", "unclaimed", "dry_run"},
    "sent": {"paid", "failed", "returned", "unclaimed"},
    "unclaimed": {"paid", "returned", "failed"},
    "paid": {"returned"},
    "dry_run": {"rejected"},
}
WEBHOOK_EVENT = {"paid": "payout.paid", "failed": "payout.failed", "returned": "payout.failed"}
DEFAULT_MANUAL_MONTHS = 3


# --- the gateway a payment connector provides --------------------------------------------------

@dataclass(frozen=True)
class PayoutOrder:
    """What a gateway needs to pay one payout; the ids are derived from the payout id."""

    payout_id: str
    amount: int
    currency: str
    receiver: str
    note: str
    batch_id: str | None = None
    item_id: str | None = None

    @property
    def sender_batch_id(self) -> str:
        return sender_batch_id(self.payout_id)

    @property
    def sender_item_id(self) -> str:
        return sender_item_id(self.payout_id)


@dataclass(frozen=True)
class GatewayAnswer:
    """A gateway's answer: a hub status (sent, paid, failed, returned, unclaimed, dry_run)."""

    status: str
    batch_id: str | None = None
    item_id: str | None = None
    provider_status: str | None = None
    reason: str | None = None
    request: dict[str, Any] | None = None


class PayoutGateway(Protocol):
    def send(self, order: PayoutOrder) -> GatewayAnswer:
        """Create the payment (idempotent per `order.sender_batch_id`). Raises `TransientError`
        to be retried, `PermanentError` when retrying cannot help."""

    def check(self, order: PayoutOrder) -> GatewayAnswer:
        """The current status of a payment created earlier."""


def sender_batch_id(payout_id: str) -> str:
    return f"hub-{payout_id}"


def sender_item_id(payout_id: str) -> str:
    return f"{payout_id}-1"


def payout_id_from_sender_id(value: str | None) -> str | None:
    if value and value.startswith("hub-"):
        return value[4:]
    if value and value.endswith("-1"):
        return value[:-2]
    return None


def gateway_for(hub: Hub, method: str) -> PayoutGateway | None:
    """The gateway of the connector named like the method (``paypal``); None for manual methods."""
    key = f"gateway:{method}"
    if key not in hub.extras:
        connector = hub.connector(method)
        factory = getattr(connector, "payout_gateway", None)
        hub.extras[key] = factory(hub) if factory else None
    return hub.extras[key]  # type: ignore[no-any-return]


# --- policy --------------------------------------------------------------------------------------

def policy_for(hub: Hub, program: Program, partner: Partner) -> PayoutPolicy:
    """The program's policy for this partner. An automatic PayPal payout needs a PayPal address;
    without one the partner is paid by hand, listed every `every_months` months (default 3)."""
    policy = hub.payout_policy(program, partner.kind)
    if policy.mode == "automatic" and not partner.paypal_email:
        return dataclasses.replace(policy, mode="manual", methods=("manual",),
                                   every_months=policy.every_months or DEFAULT_MANUAL_MONTHS)
    return policy


def month_start(when: datetime, months_back: int = 0) -> datetime:
    index = when.year * 12 + when.month - 1 - months_back
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=timezone.utc)


def monthly_period(now: datetime) -> tuple[str, datetime]:
    """Everything earned through month M is paid at the end of month M+1: at `now` the latest
    closed month is two months back. Returns (period name, earned-before cutoff)."""
    month = month_start(now, 2)
    return f"{month:%Y-%m}", month_start(now, 1)


def manual_period(now: datetime, every_months: int) -> str:
    """The name of the `every_months`-long block `now` falls in (e.g. 2026-04/3m: Apr-Jun)."""
    first = (now.month - 1) // every_months * every_months + 1
    return f"{now.year}-{first:02d}/{every_months}m"


# --- creating payouts ----------------------------------------------------------------------------

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
                  status: str, method: str, minimum: int = 0, period: str | None = None,
                  earned_before: datetime | None = None) -> Payout | None:
    """Reserve the partner's payable money in `currency` (all of it, or what was earned before
    `earned_before`) as a new payout. None when there is less than `minimum` (or nothing), or the
    period already has its payout. The caller holds the partner lock."""
    nets = ledger.payable_by_commission(session, partner.id, currency, earned_before)
    amount = sum(net for _, net in nets)
    if amount <= 0 or amount < minimum:
        return None
    now, payout_id = utcnow(), new_id("po")
    if not insert_ignore(session, Payout, dict(
            id=payout_id, partner_id=partner.id, program=program.name, amount=amount,
            currency=currency, status=status, method=method, period=period, attempts=0,
            receiver=partner.paypal_email if method == "paypal" else None, dead_letter=False,
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
    return create_payout(session, partner, program, currency, status="queued", method="paypal",
                         minimum=max(policy.minimum, 1))


def _automatic_blocked(session: Session, partner: Partner, currency: str) -> bool:
    """Don't pay automatically again into an address PayPal refused (or an operator rejected)
    until the partner's PayPal address changes; the money waits in `payable`."""
    last = session.scalars(select(Payout).where(
        Payout.partner_id == partner.id, Payout.currency == currency, Payout.period.is_(None))
        .order_by(Payout.created_at.desc()).limit(1)).first()
    return (last is not None and last.status in MONEY_BACK + ("unclaimed",)
            and last.receiver == partner.paypal_email)


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
        paypal = "paypal" in policy.methods and bool(partner.paypal_email)
        return create_payout(session, lock_partner(session, partner.id), program, currency,
                             status="queued" if paypal else "requested",
                             method="paypal" if paypal else "manual", minimum=policy.minimum,
                             period=period, earned_before=cutoff)
    if policy.mode == "manual":
        months = policy.every_months or DEFAULT_MANUAL_MONTHS
        method = next((m for m in policy.methods if m != "paypal"), "manual")
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
    _check_request_allowed(session, policy, partner, method)
    method = method or policy.methods[0]
    if policy.one_pending and _has_open_payout(session, partner.id):
        raise Unprocessable("a withdrawal is already pending", code="already_pending")
    payable = ledger.payable_balance(session, partner.id, currency)
    minimum = max(policy.minimum, 1)
    if payable < minimum:
        raise Unprocessable(f"payable balance {format_money(payable, currency)} is below the "
                            f"minimum {format_money(minimum, currency)}", code="below_minimum")
    payout = create_payout(session, partner, program, currency, status="requested", method=method,
                           minimum=minimum)
    if payout is None:  # payable counted money the per-commission view did not (cannot happen)
        raise Unprocessable("nothing payable", code="below_minimum")
    record_action(session, actor, "payout.request", payout.id, amount=payout.amount,
                  currency=currency, method=method)
    return payout


def _check_request_allowed(session: Session, policy: PayoutPolicy, partner: Partner,
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
    if (method or policy.methods[0]) == "paypal" and not partner.paypal_email:
        raise Unprocessable("the partner has no PayPal address", code="no_paypal_email")


def _has_open_payout(session: Session, partner_id: str) -> bool:
    return bool(session.scalar(select(func.count()).select_from(Payout).where(
        Payout.partner_id == partner_id, Payout.status.in_(OPEN))))


# --- status changes ------------------------------------------------------------------------

def transition(session: Session, payout: Payout, status: str, *, reason: str | None = None,
               provider_status: str | None = None, reference: str | None = None) -> bool:
    """Move a payout to `status` and its money with it; False (a no-op) when not allowed from
    where it is, e.g. a late PENDING after paid, or the same answer twice."""
    if status == payout.status or status not in _allowed_next(payout):
        return False
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
    _move_money(session, payout, previous, status)
    if status in ("paid",) + MONEY_BACK:
        payout.settled_at = now
    if status in WEBHOOK_EVENT:
        webhooks_out.emit(session, WEBHOOK_EVENT[status], f"{payout.id}:{status}",
                          payout_json(payout))
    return True


def _allowed_next(payout: Payout) -> set[str]:
    """A dead-lettered payout may still be at PayPal: it moves like a queued one, and an operator
    may also reject it (having checked PayPal)."""
    if payout.status == "failed" and payout.dead_letter:
        return NEXT["queued"] | {"rejected"}
    return NEXT.get(payout.status, set())


def _move_money(session: Session, payout: Payout, previous: str, status: str) -> None:
    refs = dict(partner_id=payout.partner_id, currency=payout.currency, payout_id=payout.id)
    if status == "paid":
        nets = ledger.held_by_payout(session, payout.id, "in_payout")
        ledger.move_lines(session, nets, "in_payout", "paid", kind="payout_paid", **refs)
    elif status in MONEY_BACK:
        source = "paid" if previous == "paid" else "in_payout"
        nets = ledger.held_by_payout(session, payout.id, source)
        ledger.move_lines(session, nets, source, "payable", kind="payout_return", **refs)


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
        return "queued" if payout.method == "paypal" else "approved"
    if action == "retry":
        if not (payout.status == "failed" and payout.dead_letter):
            raise Conflict("only a dead-lettered payout can be retried", code="invalid_state")
        return "queued"
    if action in ("reject", "mark-paid") and payout.status in ("queued", "sent", "unclaimed"):
        raise Conflict(f"the payout is {payout.status} at PayPal; wait for its answer",
                       code="invalid_state")
    return {"reject": "rejected", "mark-paid": "paid"}[action]


def apply_status_fact(hub: Hub, session: Session, fact: PayoutStatusChanged) -> None:
    """A provider's word on a payout (webhook): find it by our ids or the provider's, apply it."""
    payout = _find_payout(session, fact)
    if payout is None:
        return
    if fact.batch_id and not payout.provider_batch_id:
        payout.provider_batch_id = fact.batch_id
    if fact.item_id and not payout.provider_item_id:
        payout.provider_item_id = fact.item_id
    if fact.status:
        transition(session, payout, fact.status, reason=fact.reason,
                   provider_status=fact.provider_status)
    if fact.check:
        send_after_commit(session, "payout.check", payout.id)


def _find_payout(session: Session, fact: PayoutStatusChanged) -> Payout | None:
    payout_id = payout_id_from_sender_id(fact.sender_id)
    if payout_id:
        return session.scalars(select(Payout).where(Payout.id == payout_id)).first()
    for column, value in ((Payout.provider_item_id, fact.item_id),
                          (Payout.provider_batch_id, fact.batch_id)):
        if value:
            found = session.scalars(select(Payout).where(column == value)).first()
            if found is not None:
                return found
    return None


# --- jobs ---------------------------------------------------------------------------------------

def _order(payout: Payout) -> PayoutOrder:
    note = f"Commission payout {payout.id} ({format_money(payout.amount, payout.currency)})"
    return PayoutOrder(payout_id=payout.id, amount=payout.amount, currency=payout.currency,
                       receiver=payout.receiver or "", note=note, batch_id=payout.provider_batch_id,
                       item_id=payout.provider_item_id)


@job("payout.send", queue_name="payouts", on_exhausted="payout.dead_letter")
def send(hub: Hub, payout_id: str) -> None:
    """Pay one queued payout through its gateway; safe to run twice (PayPal refuses a second
    batch with the same sender_batch_id, and the gateway then finds the first)."""
    with hub.transaction() as session:
        payout = session.get(Payout, payout_id)
        if payout is None or payout.status != "queued":
            return
        payout.attempts += 1
        payout.updated_at = utcnow()
        order, method = _order(payout), payout.method
    gateway = gateway_for(hub, method)
    if gateway is None:
        _fail(hub, payout_id, f"no gateway for method {method!r}")
        raise PermanentError(f"no gateway for {method!r}")
    try:
        answer = gateway.send(order)
    except PermanentError as exc:
        _fail(hub, payout_id, str(exc))
        raise
    except TransientError as exc:
        _note_error(hub, payout_id, str(exc))
        raise
    _record(hub, payout_id, answer)
    if answer.status == "sent":
        _check_quietly(hub, payout_id)


def _record(hub: Hub, payout_id: str, answer: GatewayAnswer) -> None:
    with hub.transaction() as session:
        payout = get_payout(session, payout_id, lock=True)
        payout.provider_batch_id = answer.batch_id or payout.provider_batch_id
        payout.provider_item_id = answer.item_id or payout.provider_item_id
        payout.request = answer.request or payout.request
        transition(session, payout, answer.status, reason=answer.reason,
                   provider_status=answer.provider_status)


def _fail(hub: Hub, payout_id: str, reason: str) -> None:
    with hub.transaction() as session:
        transition(session, get_payout(session, payout_id, lock=True), "failed",
                   reason=reason[:500])


def _note_error(hub: Hub, payout_id: str, reason: str) -> None:
    with hub.transaction() as session:
        payout = get_payout(session, payout_id)
        payout.failure_reason, payout.updated_at = f"retrying: {reason}"[:500], utcnow()


def _check_quietly(hub: Hub, payout_id: str) -> None:
    """Ask for the item's status right away; if PayPal is slow to say, the webhook or the tick's
    poll will tell later."""
    try:
        check(hub, payout_id)
    except (TransientError, PermanentError):
        pass  # a permanent answer has already failed the payout


@job("payout.check", queue_name="payouts")
def check(hub: Hub, payout_id: str) -> None:
    """Poll the gateway for a payout whose final answer has not arrived."""
    with hub.sessions() as session:
        payout = session.get(Payout, payout_id)
        waiting = payout is not None and payout.status in ("sent", "unclaimed")
        if payout is None or not waiting or not payout.provider_batch_id:
            return
        order, method = _order(payout), payout.method
    gateway = gateway_for(hub, method)
    if gateway is None:
        return
    try:
        answer = gateway.check(order)
    except PermanentError as exc:
        _fail(hub, payout_id, str(exc))
        raise
    _record(hub, payout_id, answer)


@job("payout.dead_letter", queue_name="payouts", retries=False)
def dead_letter(hub: Hub, message: dict[str, Any], retry_info: dict[str, Any]) -> None:
    """`payout.send` ran out of retries: show it to the operator, keep the money reserved."""
    payout_id = (message.get("args") or [None])[0]
    with hub.transaction() as session:
        payout = session.get(Payout, payout_id) if payout_id else None
        if payout is None or payout.status != "queued":
            return
        last = (payout.failure_reason or "").removeprefix("retrying: ")
        payout.status, payout.dead_letter, payout.updated_at = "failed", True, utcnow()
        payout.failure_reason = (f"gave up after {payout.attempts} attempts: {last}")[:500]


# --- the sweep (`hub tick`) ------------------------------------------------------------------

def sweep(hub: Hub, now: datetime) -> dict[str, int]:
    """Create due payouts (threshold, monthly, manual list), re-send stuck ones, poll the silent."""
    created = 0
    for partner_id, currency in _payable_accounts(hub):
        with hub.transaction() as session:
            partner = session.get(Partner, partner_id)
            if partner is not None and schedule(hub, session, partner, currency, now) is not None:
                created += 1
    return {"created": created, **resend_stale(hub, now)}


def _payable_accounts(hub: Hub) -> list[tuple[str, str]]:
    with hub.sessions() as session:
        rows = session.execute(
            select(LedgerEntry.partner_id, LedgerEntry.currency)
            .where(LedgerEntry.state == "payable")
            .group_by(LedgerEntry.partner_id, LedgerEntry.currency)
            .having(func.sum(LedgerEntry.amount) > 0)).all()
    return [(p, c) for p, c in rows]


def resend_stale(hub: Hub, now: datetime) -> dict[str, int]:
    """A lost message only delays: payouts left `queued` are sent again (same sender_batch_id),
    `sent` ones are polled, pending webhook deliveries are delivered again."""
    before = now - timedelta(seconds=hub.config.queue.stale_seconds)
    with hub.sessions() as session:
        stuck = list(session.scalars(select(Payout.id).where(
            Payout.status == "queued", Payout.updated_at < before)))
        silent = list(session.scalars(select(Payout.id).where(
            Payout.status.in_(("sent", "unclaimed")), Payout.updated_at < before)))
        deliveries = webhooks_out.stale_deliveries(session, before)
    queue = queue_of(hub)
    for name, ids in (("payout.send", stuck), ("payout.check", silent),
                      ("webhook.deliver", deliveries)):
        for item in ids:
            queue.send(name, item)
    return {"resent": len(stuck), "polled": len(silent), "redelivered": len(deliveries)}


def payout_json(p: Payout) -> dict[str, Any]:
    return {"id": p.id, "partner_id": p.partner_id, "program": p.program, "amount": p.amount,
            "currency": p.currency, "status": p.status, "method": p.method,
            "receiver": p.receiver, "reference": p.reference, "period": p.period,
            "sender_batch_id": sender_batch_id(p.id), "provider_batch_id": p.provider_batch_id,
            "provider_item_id": p.provider_item_id, "provider_status": p.provider_status,
            "failure_reason": p.failure_reason, "attempts": p.attempts,
            "dead_letter": p.dead_letter, "request": p.request,
            "created_at": p.created_at.isoformat(), "updated_at": p.updated_at.isoformat(),
            "sent_at": p.sent_at.isoformat() if p.sent_at else None,
            "settled_at": p.settled_at.isoformat() if p.settled_at else None}
