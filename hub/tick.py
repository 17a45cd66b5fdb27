"""`hub tick`: the time-driven jobs, run once for a given moment (deterministic with --now).

Each job is idempotent, so running tick twice for the same moment changes nothing the second
time, and several hosts may run it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import ledger
from .db.models import Customer, Partner, Referral
from .dispatch import referral_view
from .history import histories_of_program
from .programs import History, Program, TickContext
from .runtime import Hub

TickJob = Callable[[Hub, datetime], dict[str, Any]]


def release_holds(hub: Hub, now: datetime) -> dict[str, Any]:
    with hub.transaction() as session:
        return {"released": ledger.release_due(session, now)}


def program_milestones(hub: Hub, now: datetime) -> dict[str, Any]:
    """Ask `commissions_for_tick` about every earning referral of the programs that implement
    it (milestones such as "90 days active") and book what is due by `now`. Per program: one
    query for the referrals and two for their histories, then pure evaluation."""
    booked = 0
    with hub.transaction() as session:
        for program in hub.programs.values():
            if hub.implements(program, "commissions_for_tick"):
                booked += _program_milestones(hub, session, program, now)
    return {"booked": booked}


def _program_milestones(hub: Hub, session: Session, program: Program, now: datetime) -> int:
    rows = session.execute(
        select(Referral, Partner, Customer).join(Partner, Partner.id == Referral.partner_id)
        .join(Customer, Customer.id == Referral.customer_id)
        .where(Referral.program == program.name, Referral.self_referral.is_(False),
               Referral.attributed_at <= now)
        .order_by(Referral.id)).all()
    histories = histories_of_program(session, program.name, {c.id: c.ref for _, _, c in rows})
    ticks = _partner_ticks(rows, histories, now)
    booked = 0
    for referral, partner, customer in rows:
        if partner.status != "active":
            continue
        drafts = hub.rules(program, "commissions_for_tick",
                           referral=referral_view(referral, partner, customer),
                           history=histories[customer.id], tick=ticks[partner.id])
        for draft in drafts:
            if draft.amount and draft.earned_at <= now and ledger.book(
                    session, program, partner.id, draft, referral_id=referral.id,
                    payment_id=None, event_id=None, plugin_name=program.plugin):
                booked += 1
    return booked


def _partner_ticks(rows: list[Any], histories: dict[int, History],
                   now: datetime) -> dict[str, TickContext]:
    """One TickContext per partner, holding the status timelines of all its referrals."""
    timelines: dict[str, list[Any]] = {}
    for _, partner, customer in rows:
        timelines.setdefault(partner.id, []).append(histories[customer.id].statuses)
    out = {}
    for partner_id, spans in timelines.items():
        tick = TickContext(now=now, referral_statuses=tuple(spans))
        out[partner_id] = TickContext(now=now, active_referrals=tick.active_referrals_in(now),
                                      referral_statuses=tick.referral_statuses)
    return out


# Milestones before holds: a bounty whose hold already ended by `now` is released in the same tick.
JOBS: list[tuple[str, TickJob]] = [("milestones", program_milestones), ("holds", release_holds)]


def run_tick(hub: Hub, now: datetime) -> dict[str, dict[str, Any]]:
    return {name: job(hub, now) for name, job in JOBS}
