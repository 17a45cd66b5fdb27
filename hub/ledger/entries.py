"""The ledger: commission lines and the append-only transfers between a partner's accounts.

A partner has one account per (currency, state); states are ``pending`` (in the hold period),
``payable``, ``in_payout`` (reserved by a payout under way), ``paid`` and ``voided`` (reversed).
Every movement is a transfer of two legs that sum to zero, except an earning, whose single leg
brings new money into ``pending``, and a retraction, which takes back a line booked on history
that a late event changed. So the sum of all of a partner's accounts is what it earned.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, exists, func, insert, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from hub.clock import utcnow
from hub.db.models import Commission, LedgerEntry, ProviderEvent, new_id
from hub.db.pipelined import run_one
from hub.db.upsert import insert_ignore, insert_ignore_row, many_rows
from hub.ledger.checkpoints import balance_sums
from hub.notify import notices, outbox
from hub.programs import Draft, Program

STATES = ("pending", "payable", "in_payout", "paid", "voided")


def post(session: Session, legs: Iterable[tuple[str, int]], *, partner_id: str, currency: str,
         kind: str, commission_id: str | None = None, line_id: str | None = None,
         payout_id: str | None = None, event_id: int | None = None) -> str:
    """Write one transfer: legs of (state, amount). Returns its transfer id."""
    transfer = new_id("tr")
    now = utcnow()
    insert_entries(session, [
        dict(transfer_id=transfer, partner_id=partner_id, currency=currency, state=state,
             amount=amount, kind=kind, commission_id=commission_id, line_id=line_id,
             payout_id=payout_id, event_id=event_id, created_at=now)
        for state, amount in legs
    ])
    return transfer


def insert_entries(session: Session, rows: list[dict[str, Any]]) -> None:
    """Entries are never read back as objects in the transaction that writes them: a plain
    INSERT (after flushing what they may refer to) spares the ORM's unit of work per leg."""
    if not rows:
        return
    session.flush()
    if len(rows) == 1:
        session.execute(insert(cast(Table, LedgerEntry.__table__)), rows)
        return
    run_one(session, *many_rows(session, LedgerEntry.__table__, rows))


def move(session: Session, amount: int, source: str, target: str, **refs: Any) -> str:
    """Move `amount` from account state `source` to `target` (two legs summing to zero)."""
    return post(session, [(source, -amount), (target, amount)], **refs)


def move_lines(session: Session, nets: list[tuple[str | None, int]], source: str, target: str, *,
               partner_id: str, currency: str, kind: str, payout_id: str) -> str | None:
    """One transfer moving each commission's `net` from `source` to `target` for a payout.

    Payouts move money per commission (two legs each, naming the commission and the payout), so
    every line's state stays derivable and a payout can be settled or returned exactly.
    """
    nets = [(cid, amount) for cid, amount in nets if amount]
    if not nets:
        return None
    transfer, now = new_id("tr"), utcnow()
    insert_entries(session, [
        dict(transfer_id=transfer, partner_id=partner_id, currency=currency, state=state,
             amount=sign * amount, kind=kind, commission_id=cid, line_id=None, payout_id=payout_id,
             event_id=None, created_at=now)
        for cid, amount in nets for state, sign in ((source, -1), (target, 1))
    ])
    return transfer


def move_lines_many(session: Session,
                    moves: list[tuple[str, str, str, list[tuple[str | None, int]]]],
                    source: str, target: str, *, kind: str) -> int:
    """`move_lines` for many payouts in one INSERT: `moves` holds (payout id, partner id,
    currency, nets per commission); one transfer per payout, as `move_lines` writes it."""
    now, rows = utcnow(), list[dict[str, Any]]()
    for payout_id, partner_id, currency, nets in moves:
        transfer = new_id("tr")
        rows.extend(
            dict(transfer_id=transfer, partner_id=partner_id, currency=currency, state=state,
                 amount=sign * amount, kind=kind, commission_id=cid, line_id=None,
                 payout_id=payout_id, event_id=None, created_at=now)
            for cid, amount in nets if amount for state, sign in ((source, -1), (target, 1)))
    insert_entries(session, rows)
    return len(rows)


def payable_by_account(session: Session, partner_ids: list[str]
                       ) -> dict[tuple[str, str], list[tuple[str | None, int]]]:
    """`payable_by_commission` for many partners in one query, per (partner, currency)."""
    rows = session.execute(
        select(LedgerEntry.partner_id, LedgerEntry.currency, LedgerEntry.commission_id,
               func.sum(LedgerEntry.amount))
        .where(LedgerEntry.partner_id.in_(partner_ids), LedgerEntry.state == "payable")
        .group_by(LedgerEntry.partner_id, LedgerEntry.currency, LedgerEntry.commission_id)
        .order_by(LedgerEntry.partner_id, LedgerEntry.currency, LedgerEntry.commission_id)).all()
    out: dict[tuple[str, str], list[tuple[str | None, int]]] = {}
    for partner_id, currency, cid, net in rows:
        if net:
            out.setdefault((partner_id, currency), []).append((cid, int(net)))
    return out


def payable_by_commission(session: Session, partner_id: str, currency: str,
                          earned_before: datetime | None = None) -> list[tuple[str | None, int]]:
    """The payable money of a partner in a currency, per commission (clawbacks are negative)."""
    stmt = (select(LedgerEntry.commission_id, func.sum(LedgerEntry.amount))
            .where(LedgerEntry.partner_id == partner_id, LedgerEntry.currency == currency,
                   LedgerEntry.state == "payable")
            .group_by(LedgerEntry.commission_id).order_by(LedgerEntry.commission_id))
    if earned_before is not None:
        stmt = stmt.join(Commission, Commission.id == LedgerEntry.commission_id).where(
            Commission.earned_at < earned_before)
    return [(cid, int(net)) for cid, net in session.execute(stmt).all() if net]


def held_by_payout(session: Session, payout_id: str, state: str) -> list[tuple[str | None, int]]:
    """What a payout holds in `state` (in_payout while under way, paid once paid), per
    commission."""
    rows = session.execute(
        select(LedgerEntry.commission_id, func.sum(LedgerEntry.amount))
        .where(LedgerEntry.payout_id == payout_id, LedgerEntry.state == state)
        .group_by(LedgerEntry.commission_id).order_by(LedgerEntry.commission_id)).all()
    return [(cid, int(net)) for cid, net in rows if net]


def held_by_payouts(session: Session, payout_ids: list[str],
                    state: str) -> dict[str, list[tuple[str | None, int]]]:
    """`held_by_payout` for many payouts in one query."""
    rows = session.execute(
        select(LedgerEntry.payout_id, LedgerEntry.commission_id, func.sum(LedgerEntry.amount))
        .where(LedgerEntry.payout_id.in_(payout_ids), LedgerEntry.state == state)
        .group_by(LedgerEntry.payout_id, LedgerEntry.commission_id)
        .order_by(LedgerEntry.payout_id, LedgerEntry.commission_id)).all()
    out: dict[str, list[tuple[str | None, int]]] = {}
    for payout_id, cid, net in rows:
        if net:
            out.setdefault(str(payout_id), []).append((cid, int(net)))
    return out


def book(session: Session, program: Program, partner_id: str, draft: Draft, *,
         referral_id: int | None, payment_id: int | None, event_id: int | None,
         plugin_name: str, install_id: int | None = None) -> Commission | None:
    """Book a draft as a commission line unless its key is already booked (then None)."""
    values = line_values(program, partner_id, draft, referral_id=referral_id,
                         payment_id=payment_id, event_id=event_id, plugin_name=plugin_name,
                         install_id=install_id)
    line = insert_ignore_row(session, Commission, values)
    if line is None:
        return None
    insert_entries(session, earn_legs([values]))
    outbox.emit(session, "commission.created", line.id, commission_event(line))
    notices.commission_earned(session, line, program)
    return line  # type: ignore[no-any-return]


def line_values(program: Program, partner_id: str, draft: Draft, *, referral_id: int | None,
                payment_id: int | None, event_id: int | None, plugin_name: str,
                install_id: int | None = None) -> dict[str, Any]:
    """The commission row a draft books (`book` one at a time, `hub.ingest.batch` many at once)."""
    hold = timedelta(days=int(program.settings.hold_days))
    rule = {"plugin": plugin_name, "program": program.name, "rule": draft.rule,
            "settings_hash": program.settings_hash, "inputs": draft.inputs,
            "sentence": draft.sentence}
    return dict(id=new_id("com"), program=program.name, partner_id=partner_id,
                referral_id=referral_id, key=draft.key, amount=draft.amount,
                currency=draft.currency, earned_at=draft.earned_at,
                available_at=draft.earned_at + hold, payment_id=payment_id,
                install_id=install_id, event_id=event_id, rule=rule, created_at=utcnow())


def earn_legs(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ledger entries that bring booked lines' money into ``pending``: one single-leg
    transfer per line."""
    now = utcnow()
    return [dict(transfer_id=new_id("tr"), partner_id=line["partner_id"],
                 currency=line["currency"], state="pending", amount=line["amount"], kind="earn",
                 commission_id=line["id"], line_id=line["id"], payout_id=None,
                 event_id=line["event_id"], created_at=now) for line in lines]


def reversed_so_far(session: Session, commission: Commission) -> int:
    total = session.scalar(select(func.coalesce(func.sum(Commission.amount), 0))
                           .where(Commission.reverses_id == commission.id))
    return -int(total or 0)


def is_released(session: Session, commission_id: str) -> bool:
    return bool(session.scalar(select(exists().where(
        LedgerEntry.commission_id == commission_id, LedgerEntry.kind == "release"))))


def reverse_to(session: Session, commission: Commission, target: int, *, reason: str,
               sentence: str, event_id: int | None,
               inputs: dict[str, Any] | None = None) -> Commission | None:
    """Reverse `commission` until `target` of it is reversed in all. Only ever reverses more.

    Money still in its hold is taken from ``pending``; after release it is taken from
    ``payable``, which may go below zero when it was already paid out (a clawback that later
    earnings absorb). `inputs` (what the target was computed from) is kept for explanations.
    """
    target = min(target, commission.amount)
    delta = target - reversed_so_far(session, commission)
    if delta <= 0:
        return None
    line_id = _counter_line(session, commission, key=f"{commission.key}:rev:{target}",
                            amount=-delta, target=target, reason=reason, sentence=sentence,
                            event_id=event_id, inputs=inputs)
    if line_id is None:
        return None
    source = "payable" if is_released(session, commission.id) else "pending"
    move(session, delta, source, "voided", partner_id=commission.partner_id,
         currency=commission.currency, kind="reverse", commission_id=commission.id,
         line_id=line_id, event_id=event_id)
    line = session.get(Commission, line_id)
    outbox.emit(session, "commission.voided", line_id, commission_event(line))
    return line


def _counter_line(session: Session, commission: Commission, *, key: str, amount: int,
                  target: int, reason: str, sentence: str, event_id: int | None,
                  inputs: dict[str, Any] | None) -> str | None:
    """Insert a line naming the commission it reverses (or books back); its id, or None when
    the same `key` was booked already (a replayed event)."""
    line_id = new_id("com")
    inserted = insert_ignore(session, Commission, dict(
        id=line_id, program=commission.program, partner_id=commission.partner_id,
        referral_id=commission.referral_id, key=key, amount=amount,
        currency=commission.currency, earned_at=commission.earned_at,
        available_at=commission.available_at, reverses_id=commission.id,
        payment_id=commission.payment_id, event_id=event_id,
        rule={"rule": reason, "reverses": commission.id, "sentence": sentence,
              "inputs": {**(inputs or {}), "reversed_total": target, "of": commission.amount}},
        created_at=utcnow()))
    return line_id if inserted else None


def reinstate_to(session: Session, commission: Commission, target: int, *, reason: str,
                 sentence: str, event_id: int | None,
                 inputs: dict[str, Any] | None = None) -> Commission | None:
    """Book back what was reversed of `commission` beyond `target` (a dispute the merchant won:
    the money came back). A positive line that names the commission it reverses, moved from
    ``voided`` to where the reversal took it (``payable`` once released, else ``pending``).
    A retracted line is never booked back. Idempotent per (reversed so far, target)."""
    target = max(0, min(target, commission.amount))
    so_far = reversed_so_far(session, commission)
    delta = so_far - target
    retracted = exists().where(Commission.reverses_id == commission.id,
                               Commission.key == f"{commission.key}:retract")
    if delta <= 0 or session.scalar(select(retracted)):
        return None
    line_id = _counter_line(session, commission, key=f"{commission.key}:back:{so_far}:{target}",
                            amount=delta, target=target, reason=reason, sentence=sentence,
                            event_id=event_id, inputs=inputs)
    if line_id is None:
        return None
    target_state = "payable" if is_released(session, commission.id) else "pending"
    move(session, delta, "voided", target_state, partner_id=commission.partner_id,
         currency=commission.currency, kind="reinstate", commission_id=commission.id,
         line_id=line_id, event_id=event_id)
    line = session.get(Commission, line_id)
    outbox.emit(session, "commission.reinstated", line_id, commission_event(line))
    return line


def commission_event(line: Commission | None) -> dict[str, Any]:
    """A commission line as outgoing webhooks describe it."""
    if line is None:
        return {}
    return {"id": line.id, "partner_id": line.partner_id, "program": line.program,
            "amount": line.amount, "currency": line.currency, "reverses": line.reverses_id,
            "earned_at": line.earned_at.isoformat(), "key": line.key,
            "explanation": (line.rule or {}).get("sentence")}


def retract(session: Session, commission: Commission, *, sentence: str,
            event_id: int | None) -> Commission | None:
    """Withdraw a line its rule no longer gives (an earlier payment arrived late and changed the
    customer's history). Unlike a reversal, which records money that came back (into
    ``voided``), this takes the earning out of every account it reached, its reversals
    included, so the balances end exactly as if the line had never been booked. Money already
    released is taken from ``payable`` (a clawback when it was paid out). Idempotent."""
    net = dict(session.execute(
        select(LedgerEntry.state, func.sum(LedgerEntry.amount))
        .where(LedgerEntry.commission_id == commission.id).group_by(LedgerEntry.state)).all())
    # Whatever of it went on to a payout is owed back: it comes out of payable, never `paid`.
    owed = sum(int(net.get(state) or 0) for state in ("payable", "in_payout", "paid"))
    legs = [(state, -amount) for state, amount in (
        ("pending", int(net.get("pending") or 0)), ("payable", owed),
        ("voided", int(net.get("voided") or 0))) if amount]
    if not legs:
        return None
    line_id = new_id("com")
    inserted = insert_ignore(session, Commission, dict(
        id=line_id, program=commission.program, partner_id=commission.partner_id,
        referral_id=commission.referral_id, key=f"{commission.key}:retract",
        amount=-(commission.amount - reversed_so_far(session, commission)),
        currency=commission.currency, earned_at=commission.earned_at,
        available_at=commission.available_at, reverses_id=commission.id,
        payment_id=commission.payment_id, event_id=event_id,
        rule={"rule": "retracted", "reverses": commission.id, "sentence": sentence,
              "inputs": {"of": commission.amount}},
        created_at=utcnow()))
    if not inserted:
        return None
    post(session, legs, partner_id=commission.partner_id, currency=commission.currency,
         kind="retract", commission_id=commission.id, line_id=line_id, event_id=event_id)
    return session.get(Commission, line_id)


def release_due(session: Session, now: datetime,
                changed: set[tuple[str, str]] | None = None) -> int:
    """Move every commission whose hold ended by `now` from pending to payable. Idempotent.
    Adds each (partner, currency) whose payable balance grew to `changed`."""
    pending = (select(LedgerEntry.commission_id, func.sum(LedgerEntry.amount).label("net"))
               .where(LedgerEntry.state == "pending", LedgerEntry.commission_id.is_not(None))
               .group_by(LedgerEntry.commission_id).subquery())
    rows = session.execute(
        select(Commission.id, Commission.partner_id, Commission.currency, pending.c.net)
        .join(pending, pending.c.commission_id == Commission.id)
        .where(Commission.available_at <= now, Commission.reverses_id.is_(None),
               pending.c.net > 0)
        .order_by(Commission.id)).all()  # racing ticks take the release keys in one order
    released = 0
    for commission_id, partner_id, currency, net in rows:
        try:
            with session.begin_nested():
                move(session, int(net), "pending", "payable", partner_id=partner_id,
                     currency=currency, kind="release", commission_id=commission_id)
        except IntegrityError:
            continue  # another tick released it first (uq_ledger_release)
        released += 1
        if changed is not None:
            changed.add((partner_id, currency))
    return released


def balances(session: Session, partner_id: str) -> list[dict[str, Any]]:
    """Per currency: the sum of each state's entries (a currency with no entries is absent).
    Read as the tick's checkpoint plus the newer entries: the same sums, without the history."""
    rows = balance_sums(session, partner_id)
    by_currency: dict[str, dict[str, Any]] = {}
    for currency, state, total in rows:
        entry = by_currency.setdefault(currency, {"currency": currency, **{s: 0 for s in STATES}})
        entry[state] = int(total)
    return [by_currency[c] for c in sorted(by_currency)]


def payable_balance(session: Session, partner_id: str, currency: str) -> int:
    return int(session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
        LedgerEntry.partner_id == partner_id, LedgerEntry.currency == currency,
        LedgerEntry.state == "payable")) or 0)


@dataclasses.dataclass(frozen=True)
class LineView:
    commission: Commission
    state: str
    source_event: str | None


def commission_lines(session: Session, partner_id: str, *, limit: int = 500,
                     offset: int = 0, ids: list[str] | None = None) -> list[LineView]:
    """A partner's commission lines, newest first, each with its derived state; `ids` picks
    given lines (a page chosen by a cheaper query first)."""
    reversal = aliased(Commission)
    released_at = (select(func.min(LedgerEntry.created_at)).where(
        LedgerEntry.commission_id == Commission.id, LedgerEntry.kind == "release")
        .correlate(Commission).scalar_subquery())
    reversed_total = (select(func.coalesce(func.sum(reversal.amount), 0))
                      .where(reversal.reverses_id == Commission.id)
                      .correlate(Commission).scalar_subquery())
    rows = session.execute(
        select(Commission, released_at, reversed_total, ProviderEvent.event_id,
               _state_total("in_payout"), _state_total("paid"))
        .outerjoin(ProviderEvent, ProviderEvent.id == Commission.event_id)
        .where(Commission.partner_id == partner_id,
               Commission.id.in_(ids) if ids is not None else true())
        .order_by(Commission.created_at.desc(), Commission.id)
        .limit(limit).offset(0 if ids is not None else offset)).all()
    return [LineView(c, _line_state(c, rel, int(rev or 0), int(held or 0), int(paid or 0)), ev)
            for c, rel, rev, ev, held, paid in rows]


def _state_total(state: str) -> Any:
    return (select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
        LedgerEntry.commission_id == Commission.id, LedgerEntry.state == state)
        .correlate(Commission).scalar_subquery())


def line_state(session: Session, line: Commission) -> str:
    """One line's derived state, the same way `commission_lines` derives it for a list."""
    released_at = session.scalar(select(func.min(LedgerEntry.created_at)).where(
        LedgerEntry.commission_id == line.id, LedgerEntry.kind == "release"))
    totals = dict(session.execute(select(LedgerEntry.state, func.sum(LedgerEntry.amount)).where(
        LedgerEntry.commission_id == line.id).group_by(LedgerEntry.state)).all())
    return _line_state(line, released_at, -reversed_so_far(session, line),
                       int(totals.get("in_payout") or 0), int(totals.get("paid") or 0))


def _line_state(line: Commission, released_at: datetime | None, reversed_total: int,
                in_payout: int, paid: int) -> str:
    """Payouts move money per commission, so a line is paid (or in a payout under way) exactly
    when its own money is."""
    if line.reverses_id is not None or line.amount + reversed_total <= 0:
        return "voided"
    if released_at is None:
        return "pending"
    if paid > 0:
        return "paid"
    if in_payout > 0:
        return "in_payout"
    return "payable"
