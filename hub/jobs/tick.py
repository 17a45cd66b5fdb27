"""`hub tick`: the time-driven jobs, run once for a given moment (deterministic with --now).

Each job is idempotent, so running tick twice for the same moment changes nothing the second
time, and several hosts may run it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.attribution.counts import count_changes
from hub.attribution.referrals import milestone_referrals
from hub.db.models import (
    Commission,
    ProviderEvent,
    SubscriptionState,
)
from hub.ingest.decide import has_milestones, milestone_drafts
from hub.ingest.events import record
from hub.ledger import entries as ledger
from hub.ledger.checkpoints import checkpoint_ledger
from hub.ledger.history import histories_of_program
from hub.ledger.statuses import snapshot_activity
from hub.notify.mail import SEND_JOB, stale_mails
from hub.payouts import automatic, sweep
from hub.programs import Program
from hub.runtime import QUEUE_KEY, Hub

TickJob = Callable[[Hub, datetime], dict[str, Any]]


def release_holds(hub: Hub, now: datetime) -> dict[str, Any]:
    changed: set[tuple[str, str]] = set()
    with hub.transaction() as session:
        released = ledger.release_due(session, now, changed)
        # The release lifted these balances: automatic programs pay at the threshold, in the
        # same transaction (payout rows in PayPal batches) and with a message after the commit.
        paid = automatic.create_for_changed(hub, session, changed)
    return {"released": released, "payouts": paid}


def payout_sweep(hub: Hub, now: datetime) -> dict[str, Any]:
    return sweep.sweep(hub, now)


def program_milestones(hub: Hub, now: datetime) -> dict[str, Any]:
    """Book the milestones (such as "90 days active") due by `now` in every program whose rules
    have them. Per program: one query for the referrals and two for their histories, then the
    pure evaluation of `hub.ingest.decide.milestone_drafts`."""
    programs = [p for p in hub.programs.values() if has_milestones(hub, p)]
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


def pending_mail(hub: Hub, now: datetime) -> dict[str, Any]:
    """Send again the mails still pending after `[queue] stale_seconds` (a lost message, a
    long SMTP outage): a mail is delayed, never lost."""
    before = now - timedelta(seconds=hub.config.queue.stale_seconds)
    with hub.sessions() as session:
        pending = stale_mails(session, before)
    for mail_id in pending:
        hub.queue.send(SEND_JOB, mail_id)
    return {"resent": len(pending)}


JOBS: list[tuple[str, TickJob]] = [("milestones", program_milestones), ("holds", release_holds),
                                   ("payouts", payout_sweep), ("activity", snapshot_activity),
                                   ("checkpoint", checkpoint_ledger), ("counts", count_changes),
                                   ("mail", pending_mail)]


def run_tick(hub: Hub, now: datetime) -> dict[str, dict[str, Any]]:
    result = {name: job(hub, now) for name, job in JOBS}
    queue = hub.extras.get(QUEUE_KEY)
    if queue is not None:
        queue.join()  # embedded queue: finish the jobs this tick started before exiting
    return result
