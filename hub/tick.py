"""`hub tick`: the time-driven jobs, run once for a given moment (deterministic with --now).

Each job is idempotent, so running tick twice for the same moment changes nothing the second
time, and several hosts may run it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import ledger
from .db.models import Commission, Customer, Partner, ProviderEvent, Referral
from .events import record
from .history import histories_of_program
from .programs import History, Program, TickContext
from .programs import Referral as ReferralView
from .runtime import Hub

TickJob = Callable[[Hub, datetime], dict[str, Any]]


def release_holds(hub: Hub, now: datetime) -> dict[str, Any]:
    from .payouts import trigger_automatic

    changed: set[tuple[str, str]] = set()
    with hub.transaction() as session:
        released = ledger.release_due(session, now, changed)
        # The release lifted these balances: automatic programs pay at the threshold, in the
        # same transaction (the payout row) and with a message after the commit.
        paid = sum(1 for partner_id, currency in sorted(changed)
                   if trigger_automatic(hub, session, partner_id, currency) is not None)
    return {"released": released, "payouts": paid}


def payout_sweep(hub: Hub, now: datetime) -> dict[str, Any]:
    from .payouts import sweep

    return sweep(hub, now)



def program_milestones(hub: Hub, now: datetime) -> dict[str, Any]:
    """Ask `commissions_for_tick` about every earning referral of the programs that implement
    it (milestones such as "90 days active") and book what is due by `now`. Per program: one
    query for the referrals and two for their histories, then pure evaluation."""
    programs = [p for p in hub.programs.values() if hub.implements(p, "commissions_for_tick")]
    if not programs:
        return {"booked": 0}
    with hub.transaction() as session:
        return {"booked": sum(_program_milestones(hub, session, p, now) for p in programs)}


def _program_milestones(hub: Hub, session: Session, program: Program, now: datetime) -> int:
    rows = session.execute(
        select(Referral.id, Referral.source, Referral.attributed_at, Partner.id.label("partner_id"),
               Partner.kind, Partner.status, Customer.id.label("customer_id"), Customer.ref)
        .join(Partner, Partner.id == Referral.partner_id)
        .join(Customer, Customer.id == Referral.customer_id)
        .where(Referral.program == program.name, Referral.self_referral.is_(False),
               Referral.attributed_at <= now)
        .order_by(Referral.id)).all()
    histories = histories_of_program(session, program.name, {r.customer_id: r.ref for r in rows})
    ticks = _partner_ticks(rows, histories, now)
    # A milestone stays due on every later tick; skip the ones booked before without a write.
    done = set(session.execute(select(Commission.partner_id, Commission.key).where(
        Commission.program == program.name, Commission.payment_id.is_(None),
        Commission.install_id.is_(None), Commission.reverses_id.is_(None))).all())
    booked = 0
    for row in rows:
        if row.status != "active":
            continue
        view = ReferralView(partner_id=row.partner_id, partner_kind=row.kind, customer_ref=row.ref,
                            source=row.source, attributed_at=row.attributed_at)
        drafts = hub.rules(program, "commissions_for_tick", referral=view,
                           history=histories[row.customer_id], tick=ticks[row.partner_id])
        for draft in drafts:
            due = draft.amount and draft.earned_at <= now
            if not due or (row.partner_id, draft.key) in done:
                continue
            event_id = milestone_event(session, program, row.partner_id, row.id, draft)
            if ledger.book(session, program, row.partner_id, draft, referral_id=row.id,
                           payment_id=None, event_id=event_id, plugin_name=program.plugin):
                booked += 1
    return booked


def milestone_event(session: Session, program: Program, partner_id: str, referral_id: int,
                    draft: Any) -> int | None:
    """A milestone has no provider event behind it, but every ledger line must name the event
    that caused it: the tick records one of the pseudo-provider ``hub`` (once per milestone,
    dated at the business moment it was reached) and the line names that."""
    key = f"milestone:{program.name}:{partner_id}:{draft.key}"
    payload = {"program": program.name, "partner_id": partner_id, "referral_id": referral_id,
               "key": draft.key, "rule": draft.rule}
    row_id = record(session, "hub", key, "milestone.reached", draft.earned_at, payload)
    if row_id is None:  # recorded by an earlier (or concurrent) tick
        row_id = session.scalar(select(ProviderEvent.id).where(
            ProviderEvent.provider == "hub", ProviderEvent.event_id == key))
    return row_id


def _partner_ticks(rows: Sequence[Any], histories: dict[int, History],
                   now: datetime) -> dict[str, TickContext]:
    """One TickContext per partner, holding the status timelines of all its referrals."""
    timelines: dict[str, list[Any]] = {}
    for row in rows:
        timelines.setdefault(row.partner_id, []).append(histories[row.customer_id].statuses)
    out = {}
    for partner_id, spans in timelines.items():
        tick = TickContext(now=now, referral_statuses=tuple(spans))
        out[partner_id] = dataclasses.replace(tick, active_referrals=tick.active_referrals_in(now))
    return out


JOBS: list[tuple[str, TickJob]] = [("milestones", program_milestones), ("holds", release_holds),
                                   ("payouts", payout_sweep)]


def run_tick(hub: Hub, now: datetime) -> dict[str, dict[str, Any]]:
    result = {name: job(hub, now) for name, job in JOBS}
    from .queue import QUEUE_KEY

    queue = hub.extras.get(QUEUE_KEY)
    if queue is not None:
        queue.join()  # embedded queue: finish the jobs this tick started before exiting
    return result
