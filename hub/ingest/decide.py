"""What to book: the one decision layer between the facts the hub knows and the ledger.

Every path that books commissions comes here with the state it already holds: the per-event
path (`hub.ingest.apply`) and the set-based batch path (`hub.ingest.batch`) with rows they read,
`hub tick` with the program's referrals and histories, the what-if simulation (`hub.ingest.whatif`)
with a read-only stream and changed settings. This module asks the program's rule hooks (the
only module of the core that does) and returns what they earn; the callers only differ in how
they load the state and where they write the answer (the ledger, or a scratch ledger).

Each function is pure: no database, no clock. Who earns on something dated `at` is
`hub.attribution.referrals.holder_at`; how far a refund or dispute reverses a line is
`hub.ledger.reversals.reversal_target`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from hub.attribution.referrals import Holder, MilestoneReferral, holder_at
from hub.programs import Draft, History, Install, Payment, Program, Referral, TickContext
from hub.runtime import Hub

PAYMENT_HOOK = "commissions_for_payment"
INSTALL_HOOK = "commissions_for_install"
TICK_HOOK = "commissions_for_tick"


@dataclasses.dataclass(frozen=True)
class Earner:
    """A referral as the rules see it at one moment: its program, and the holder then."""

    program: Program
    referral_id: int | None
    view: Referral

    @property
    def partner_id(self) -> str:
        return self.view.partner_id


@dataclasses.dataclass(frozen=True)
class Booking:
    """One line to book: `draft`, earned by `earner`."""

    earner: Earner
    draft: Draft


def earner(program: Program, referral_id: int | None, holder: Holder, *, customer_ref: str,
           source: str, attributed_at: datetime) -> Earner:
    """The `Earner` of a referral held by `holder` (see `holder_at`)."""
    return Earner(program, referral_id, Referral(
        partner_id=holder.partner_id, partner_kind=holder.partner_kind,
        customer_ref=customer_ref, source=source, attributed_at=attributed_at))


def payment_bookings(hub: Hub, earners: Iterable[Earner], payment: Payment,
                     history: History) -> list[Booking]:
    """What `payment` earns for each earning referral of its customer (zero lines dropped)."""
    return [Booking(e, d) for e in earners
            for d in hub.rules(e.program, PAYMENT_HOOK, payment=payment, referral=e.view,
                               history=history) if d.amount]


def install_bookings(hub: Hub, earners: Iterable[Earner], install: Install,
                     history: History) -> list[Booking]:
    """What an installation earns for each earning referral of its customer."""
    return [Booking(e, d) for e in earners
            for d in hub.rules(e.program, INSTALL_HOOK, install=install, referral=e.view,
                               history=history) if d.amount]


def pays_for_installs(hub: Hub, program: Program) -> bool:
    """Whether the program's plugin earns on installations (the portal then counts them)."""
    return hub.implements(program, INSTALL_HOOK)


def has_milestones(hub: Hub, program: Program) -> bool:
    """Whether the program's plugin books anything with time alone (`hub tick`)."""
    return hub.implements(program, TICK_HOOK)


@dataclasses.dataclass(frozen=True)
class Milestone:
    """A line a milestone rule gives: `draft`, for `partner_id`."""

    referral: MilestoneReferral
    partner_id: str
    draft: Draft


def milestone_drafts(hub: Hub, program: Program, referrals: Sequence[MilestoneReferral],
                     histories: Mapping[int, History], now: datetime) -> list[Milestone]:
    """What the milestone rules give at `now` for every referral, each line for the holder at its
    moment (a milestone reached before a reassignment earns for the earlier holder). The tick
    job books the result; the what-if simulates it."""
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
    who = earner(program, referral.referral_id, holder, customer_ref=referral.customer_ref,
                 source=referral.source, attributed_at=referral.attributed_at)
    return list(hub.rules(program, TICK_HOOK, referral=who.view,
                          history=histories[referral.customer_id],
                          tick=ticks.get(holder.partner_id) or TickContext(now=now)))


def partner_ticks(referrals: Sequence[MilestoneReferral], histories: Mapping[int, History],
                  now: datetime) -> dict[str, TickContext]:
    """One TickContext per partner, holding the status timelines of all its referrals."""
    timelines: dict[str, list[object]] = {}
    for r in referrals:
        timelines.setdefault(r.current.partner_id, []).append(histories[r.customer_id].statuses)
    out = {}
    for partner_id, spans in timelines.items():
        tick = TickContext(now=now, referral_statuses=tuple(spans))  # type: ignore[arg-type]
        out[partner_id] = dataclasses.replace(tick, active_referrals=tick.active_referrals_in(now))
    return out
