"""`hub tick`: the time-driven jobs, run once for a given moment (deterministic with --now).

Each job is idempotent, so running tick twice for the same moment changes nothing the second
time, and several hosts may run it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from hub.attribution.counts import count_changes
from hub.attribution.referrals import Holder, can_earn, holder_at
from hub.db.models import (
    Commission,
    Customer,
    Partner,
    ProviderEvent,
    Referral,
    ReferralHandover,
    SubscriptionState,
)
from hub.ingest.events import record
from hub.ledger import entries as ledger
from hub.ledger.checkpoints import checkpoint_ledger
from hub.ledger.history import histories_of_program
from hub.ledger.statuses import snapshot_activity
from hub.programs import Draft, History, Program, TickContext
from hub.programs import Referral as ReferralView
from hub.runtime import QUEUE_KEY, Hub

TickJob = Callable[[Hub, datetime], dict[str, Any]]


def release_holds(hub: Hub, now: datetime) -> dict[str, Any]:
    from hub.payouts.automatic import create_for_changed

    changed: set[tuple[str, str]] = set()
    with hub.transaction() as session:
        released = ledger.release_due(session, now, changed)
        # The release lifted these balances: automatic programs pay at the threshold, in the
        # same transaction (payout rows in PayPal batches) and with a message after the commit.
        paid = create_for_changed(hub, session, changed)
    return {"released": released, "payouts": paid}


def payout_sweep(hub: Hub, now: datetime) -> dict[str, Any]:
    from hub.payouts.sweep import sweep

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
    referrals = milestone_referrals(session, program.name, now)
    histories = histories_of_program(session, program.name,
                                     {r.customer_id: r.customer_ref for r in referrals})
    # A milestone stays due on every later tick; skip the ones booked before without a write.
    done = set(session.execute(select(Commission.partner_id, Commission.key).where(
        Commission.program == program.name, Commission.payment_id.is_(None),
        Commission.install_id.is_(None), Commission.reverses_id.is_(None))).all())
    booked = 0
    for m in milestone_drafts(hub, program, referrals, histories, now):
        if (m.partner_id, m.draft.key) not in done and ledger.book(
                session, program, m.partner_id, m.draft, referral_id=m.referral.referral_id,
                payment_id=None, plugin_name=program.plugin,
                event_id=status_event(session, m.referral.customer_id, m.draft.earned_at)
                or milestone_event(session, program, m.partner_id, m.referral.referral_id,
                                   m.draft)):
            booked += 1
    return booked


def status_event(session: Session, customer_id: int, at: datetime) -> int | None:
    """The provider event behind the account's status in force at `at` (what a milestone line
    names as its cause, for explanations)."""
    return session.scalar(select(SubscriptionState.event_id).where(
        SubscriptionState.customer_id == customer_id, SubscriptionState.occurred_at <= at,
        SubscriptionState.event_id.is_not(None))
        .order_by(SubscriptionState.occurred_at.desc(), SubscriptionState.id.desc()).limit(1))


def milestone_event(session: Session, program: Program, partner_id: str, referral_id: int,
                    draft: Any) -> int | None:
    """When no provider event stands behind a milestone's moment, the tick records one of the
    pseudo-provider ``hub`` (once per milestone, dated when it was reached) so that every ledger
    line still names the event that caused it."""
    key = f"milestone:{program.name}:{partner_id}:{draft.key}"
    payload = {"program": program.name, "partner_id": partner_id, "referral_id": referral_id,
               "key": draft.key, "rule": draft.rule}
    row_id = record(session, "hub", key, "milestone.reached", draft.earned_at, payload)
    if row_id is None:  # recorded by an earlier (or concurrent) tick
        row_id = session.scalar(select(ProviderEvent.id).where(
            ProviderEvent.provider == "hub", ProviderEvent.event_id == key))
    return row_id


@dataclasses.dataclass(frozen=True)
class MilestoneReferral:
    """A referral as the milestone rules see it: the customer, who holds it now (`current`)
    and, when an operator reassigned it, since when and who held it before."""

    referral_id: int
    customer_id: int
    customer_ref: str
    source: str
    attributed_at: datetime
    current: Holder
    effective_from: datetime | None = None
    earlier: tuple[Holder, ...] = ()


@dataclasses.dataclass(frozen=True)
class Milestone:
    """A line a milestone rule gives: `draft`, for `partner_id`."""

    referral: MilestoneReferral
    partner_id: str
    draft: Draft


def milestone_referrals(db: Session | Connection, program: str,
                        now: datetime) -> list[MilestoneReferral]:
    """The program's referrals the milestones job evaluates at `now` (self-referrals neither
    earn nor count): one query for them and one for their handovers. Works on a session and on
    the what-if's read-only connection alike."""
    rows = db.execute(
        select(Referral.id, Referral.source, Referral.attributed_at, Referral.effective_from,
               Partner.id.label("partner_id"), Partner.kind, Partner.status,
               Customer.id.label("customer_id"), Customer.ref)
        .join(Partner, Partner.id == Referral.partner_id)
        .join(Customer, Customer.id == Referral.customer_id)
        .where(Referral.program == program, Referral.self_referral.is_(False),
               Referral.attributed_at <= now)
        .order_by(Referral.id)).all()
    earlier = handover_holders(db, program)
    return [MilestoneReferral(
        referral_id=r.id, customer_id=r.customer_id, customer_ref=r.ref, source=r.source,
        attributed_at=r.attributed_at, effective_from=r.effective_from,
        current=Holder(r.partner_id, r.kind, can_earn(False, r.status)),
        earlier=tuple(earlier.get(r.id, ()))) for r in rows]


def handover_holders(db: Session | Connection, program: str) -> dict[int, list[Holder]]:
    """Every handover of the program's referrals, as `Holder`s per referral id."""
    rows = db.execute(
        select(ReferralHandover.referral_id, ReferralHandover.partner_id, ReferralHandover.until,
               ReferralHandover.self_referral, Partner.kind, Partner.status)
        .join(Partner, Partner.id == ReferralHandover.partner_id)
        .join(Referral, Referral.id == ReferralHandover.referral_id)
        .where(Referral.program == program).order_by(ReferralHandover.until)).all()
    out: dict[int, list[Holder]] = {}
    for r in rows:
        out.setdefault(r.referral_id, []).append(
            Holder(r.partner_id, r.kind, can_earn(r.self_referral, r.status), r.until))
    return out


def milestone_drafts(hub: Hub, program: Program, referrals: Sequence[MilestoneReferral],
                     histories: Mapping[int, History], now: datetime) -> list[Milestone]:
    """What `commissions_for_tick` gives at `now` for every referral, each line for the holder
    at its moment (`referrals.holder_at`: a milestone reached before a reassignment earns for
    the earlier holder). Pure: the tick job books the result, the what-if simulates it."""
    ticks = partner_ticks(referrals, histories, now)
    out = []
    for referral in referrals:
        if not referral.current.earns:
            continue
        for draft in _ask_tick(hub, program, referral, referral.current, histories, ticks, now):
            holder = holder_at(referral.current, referral.effective_from, referral.earlier,
                               draft.earned_at)
            line: Draft | None = draft
            if holder is not None and holder is not referral.current:
                # the earlier holder's own kind and counts decide its line
                again = _ask_tick(hub, program, referral, holder, histories, ticks, now)
                line = next((d for d in again if d.key == draft.key), None)
            if holder is not None and line is not None and line.amount and line.earned_at <= now:
                out.append(Milestone(referral, holder.partner_id, line))
    return out


def _ask_tick(hub: Hub, program: Program, referral: MilestoneReferral, holder: Holder,
              histories: Mapping[int, History], ticks: Mapping[str, TickContext],
              now: datetime) -> list[Draft]:
    view = ReferralView(partner_id=holder.partner_id, partner_kind=holder.partner_kind,
                        customer_ref=referral.customer_ref, source=referral.source,
                        attributed_at=referral.attributed_at)
    return list(hub.rules(program, "commissions_for_tick", referral=view,
                          history=histories[referral.customer_id],
                          tick=ticks.get(holder.partner_id) or TickContext(now=now)))


def partner_ticks(referrals: Sequence[MilestoneReferral], histories: Mapping[int, History],
                  now: datetime) -> dict[str, TickContext]:
    """One TickContext per partner, holding the status timelines of all its referrals."""
    timelines: dict[str, list[Any]] = {}
    for r in referrals:
        timelines.setdefault(r.current.partner_id, []).append(histories[r.customer_id].statuses)
    out = {}
    for partner_id, spans in timelines.items():
        tick = TickContext(now=now, referral_statuses=tuple(spans))
        out[partner_id] = dataclasses.replace(tick, active_referrals=tick.active_referrals_in(now))
    return out


JOBS: list[tuple[str, TickJob]] = [("milestones", program_milestones), ("holds", release_holds),
                                   ("payouts", payout_sweep), ("activity", snapshot_activity),
                                   ("checkpoint", checkpoint_ledger), ("counts", count_changes)]


def run_tick(hub: Hub, now: datetime) -> dict[str, dict[str, Any]]:
    result = {name: job(hub, now) for name, job in JOBS}
    queue = hub.extras.get(QUEUE_KEY)
    if queue is not None:
        queue.join()  # embedded queue: finish the jobs this tick started before exiting
    return result
