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
from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.ledger import entries as ledger

from hub.notify import webhooks as webhooks_out
from hub.db.audit import record_action
from hub.clock import utcnow
from hub.db.models import LedgerEntry, Partner, Payout, new_id
from hub.db.upsert import insert_ignore
from hub.errors import Conflict, NotFound, Unprocessable
from hub.facts import PayoutStatusChanged
from hub.money import format_money
from hub.programs import PayoutPolicy, Program
from hub.jobs.queue import PermanentError, TransientError, job, queue_of, send_after_commit
from hub.runtime import Hub

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
    hub_batch: str | None = None  # the hub's batch this payout travels in, if any

    @property
    def sender_batch_id(self) -> str:
        return sender_batch_id(self.hub_batch or self.payout_id)

    @property
    def sender_item_id(self) -> str:
        return sender_item_id(self.payout_id)


@dataclass(frozen=True)
class GatewayAnswer:
    """A gateway's answer: a hub status (sent, paid, failed, returned, unclaimed, dry_run).
    For one item of a batch, `sender_item_id` says which payout it is about."""

    status: str
    batch_id: str | None = None
    item_id: str | None = None
    provider_status: str | None = None
    reason: str | None = None
    request: dict[str, Any] | None = None
    sender_item_id: str | None = None


class PayoutGateway(Protocol):
    def send(self, order: PayoutOrder) -> GatewayAnswer:
        """Create the payment (idempotent per `order.sender_batch_id`). Raises `TransientError`
        to be retried, `PermanentError` when retrying cannot help."""

    def check(self, order: PayoutOrder) -> GatewayAnswer:
        """The current status of a payment created earlier."""

    def send_batch(self, sender_batch_id: str, orders: list[PayoutOrder]) -> GatewayAnswer:
        """Create one provider batch of `orders` (idempotent per `sender_batch_id`); the answer
        is the batch's (sent, failed, dry_run), its items' come from `check_batch`."""

    def check_batch(self, batch_id: str) -> tuple[str | None, list[GatewayAnswer]]:
        """The batch's provider status and one answer per item (with `sender_item_id`)."""


def sender_batch_id(key: str) -> str:
    """The provider's idempotency key for a batch: from the batch id (``pb_…``) for batched
    payouts, from the payout id (``po_…``) for one sent alone."""
    return f"hub-{key}"


def sender_batch_of(payout: Payout) -> str:
    return sender_batch_id(payout.batch_id or payout.id)


def sender_item_id(payout_id: str) -> str:
    return f"{payout_id}-1"


def payout_id_from_sender_id(value: str | None) -> str | None:
    if value and value.startswith("hub-"):
        return value[4:]
    if value and value.endswith("-1"):
        return value[:-2]
    return None


def batch_id_from_sender_id(value: str | None) -> str | None:
    """The hub batch a ``hub-pb_…`` sender_batch_id names (None for a payout's own)."""
    key = payout_id_from_sender_id(value) if value and value.startswith("hub-") else None
    return key if key and key.startswith("pb_") else None


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
        .order_by(Payout.created_at.desc(), Payout.id.desc()).limit(1)).first()
    return last is not None and refused_before(last.status, last.receiver, partner.paypal_email)


def refused_before(last_status: str | None, last_receiver: str | None,
                   paypal_email: str | None) -> bool:
    """The rule behind `_automatic_blocked`, given the account's latest unscheduled payout."""
    return last_status in MONEY_BACK + ("unclaimed",) and last_receiver == paypal_email


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
    for (source, target, kind), payouts in moves.items():
        held = ledger.held_by_payouts(session, [p.id for p in payouts], source)
        ledger.move_lines_many(session, [(p.id, p.partner_id, p.currency, held.get(p.id, []))
                                         for p in payouts], source, target, kind=kind)
    for payout in {p.id: p for p in moved}.values():  # a payout may move twice (sent, paid)
        if payout.status in WEBHOOK_EVENT:
            webhooks_out.emit(session, WEBHOOK_EVENT[payout.status], f"{payout.id}:{payout.status}",
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
    """A provider's word on a payout (webhook): find it by our ids or the provider's, apply it.
    A word on a whole batch of ours (``hub-pb_…``) applies to each of its payouts."""
    from hub.payouts.batches import apply_batch_fact, batch_of_fact

    batch = batch_of_fact(session, fact)
    if batch is not None:
        apply_batch_fact(session, batch, fact)
        return
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
    return order_of(payout.id, payout.amount, payout.currency, payout.receiver,
                    payout.provider_batch_id, payout.provider_item_id, payout.batch_id)


def order_of(payout_id: str, amount: int, currency: str, receiver: str | None,
             batch_id: str | None = None, item_id: str | None = None,
             hub_batch: str | None = None) -> PayoutOrder:
    """The gateway order of a payout: derived from the row alone, so a resend is the same."""
    note = f"Commission payout {payout_id} ({format_money(amount, currency)})"
    return PayoutOrder(payout_id=payout_id, amount=amount, currency=currency,
                       receiver=receiver or "", note=note, batch_id=batch_id, item_id=item_id,
                       hub_batch=hub_batch)


@job("payout.send", queue_name="payouts", on_exhausted="payout.dead_letter")
def send(hub: Hub, payout_id: str) -> None:
    """Pay one queued payout through its gateway; safe to run twice (PayPal refuses a second
    batch with the same sender_batch_id, and the gateway then finds the first). A payout that
    travels in a batch is sent with its whole batch (the same request as the first time)."""
    with hub.sessions() as session:
        batch_id = session.scalar(select(Payout.batch_id).where(Payout.id == payout_id))
    if batch_id is not None:
        from hub.payouts.batches import send_batch
        send_batch(hub, batch_id)
        return
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
        if payout.batch_id is not None:
            from hub.payouts.batches import dead_letter_all
            dead_letter_all(session, payout.batch_id)
            return
        last = (payout.failure_reason or "").removeprefix("retrying: ")
        payout.status, payout.dead_letter, payout.updated_at = "failed", True, utcnow()
        payout.failure_reason = (f"gave up after {payout.attempts} attempts: {last}")[:500]


# --- the sweep (`hub tick`) ------------------------------------------------------------------

def sweep(hub: Hub, now: datetime) -> dict[str, int]:
    """Create due payouts (threshold, monthly, manual list), re-send stuck ones, poll the silent.

    Automatic PayPal payouts are decided set-based, `BATCH_SIZE` accounts per transaction, each
    transaction one PayPal batch and one message (`hub.payouts.automatic`); the other policies
    are decided per partner."""
    from hub.payouts.automatic import create_automatic, split_accounts
    from hub.payouts.batches import BATCH_SIZE, chunks

    with hub.sessions() as session:
        automatic, others = split_accounts(hub, payable_accounts(session))
    created = 0
    for chunk in chunks(automatic, BATCH_SIZE):
        with hub.transaction() as session:
            created += create_automatic(session, chunk)
    for partner_id, currency in others:
        with hub.transaction() as session:
            partner = session.get(Partner, partner_id)
            if partner is not None and schedule(hub, session, partner, currency, now) is not None:
                created += 1
    return {"created": created, **resend_stale(hub, now)}


def payable_accounts(session: Session, partner_ids: list[str] | None = None) -> list[Any]:
    """(partner_id, currency, payable, program, kind, paypal_email) of every account with
    payable money, in (partner, currency) order; one query."""
    stmt = (select(LedgerEntry.partner_id, LedgerEntry.currency,
                   func.sum(LedgerEntry.amount).label("payable"), Partner.program, Partner.kind,
                   Partner.paypal_email)
            .join(Partner, Partner.id == LedgerEntry.partner_id)
            .where(LedgerEntry.state == "payable")
            .group_by(LedgerEntry.partner_id, LedgerEntry.currency, Partner.program,
                      Partner.kind, Partner.paypal_email)
            .having(func.sum(LedgerEntry.amount) > 0)
            .order_by(LedgerEntry.partner_id, LedgerEntry.currency))
    if partner_ids is not None:
        stmt = stmt.where(LedgerEntry.partner_id.in_(partner_ids))
    return list(session.execute(stmt).all())


def resend_stale(hub: Hub, now: datetime) -> dict[str, int]:
    """A lost message only delays: payouts left `queued` are sent again (same sender_batch_id),
    `sent` ones are polled, pending webhook deliveries are delivered again."""
    before = now - timedelta(seconds=hub.config.queue.stale_seconds)
    with hub.sessions() as session:
        stuck = session.execute(select(Payout.id, Payout.batch_id).where(
            Payout.status == "queued", Payout.updated_at < before)).all()
        silent = session.execute(select(Payout.id, Payout.batch_id).where(
            Payout.status.in_(("sent", "unclaimed")), Payout.updated_at < before)).all()
        deliveries = webhooks_out.stale_deliveries(session, before)
    queue = queue_of(hub)
    messages = (_per_batch("payout.send", stuck) + _per_batch("payout.check", silent)
                + [("webhook.deliver", d) for d in deliveries])
    for name, item in messages:
        queue.send(name, item)
    return {"resent": len(stuck), "polled": len(silent), "redelivered": len(deliveries)}


def _per_batch(name: str, rows: Sequence[Any]) -> list[tuple[str, str]]:
    """One message per payout sent alone, one per batch for batched ones (`name` + ``_batch``)."""
    alone = [(name, payout_id) for payout_id, batch_id in rows if batch_id is None]
    batches = sorted({batch_id for _, batch_id in rows if batch_id is not None})
    return alone + [(f"{name}_batch", batch_id) for batch_id in batches]


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
