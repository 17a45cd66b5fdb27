"""Who holds a referral, and who earned on it when: the ownership rule (`holder_at`) that live
processing, `hub tick` and the what-if simulation share, and the referral's JSON shape.

Operator assignments and reassignments, which write handovers, are in `hub.ingest.assignments`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from hub.db.models import Customer, Partner, Referral, ReferralHandover


@dataclass(frozen=True)
class Holder:
    """A partner who holds (or held, until `until`) a referral, and whether it may earn on it:
    not a self-referral, partner active."""

    partner_id: str
    partner_kind: str
    earns: bool
    until: datetime | None = None  # None: the current holder


def holder_at(current: Holder, effective_from: datetime | None, earlier: Sequence[Holder],
              at: datetime) -> Holder | None:
    """Who earns on something dated `at` (a payment, an install, a milestone) of a referral held
    by `current` since `effective_from`, with the `earlier` holders of its handovers.

    The one ownership rule of live processing (`hub.ingest.apply`, `hub.jobs.tick`) and the what-if
    simulation: nothing earns while the current referral cannot (self-referral, partner not
    active); from `effective_from` on (or with no reassignment) the current holder earns;
    before it, the holder whose tenure covered `at`, if that one may still earn."""
    if not current.earns:
        return None
    if effective_from is None or at >= effective_from:
        return current
    return earlier_holder(earlier, at)


def earlier_holder(earlier: Sequence[Holder], at: datetime) -> Holder | None:
    """The handover holder whose tenure covered `at` (the first to end after it), if it may
    still earn."""
    covering = [h for h in earlier if h.until is not None and h.until > at]
    held = min(covering, key=lambda h: h.until or at) if covering else None
    return held if held is not None and held.earns else None


def earlier_holders(session: Session, referral_id: int) -> list[Holder]:
    """The handovers of a referral as `Holder`s (oldest first)."""
    rows = session.execute(select(ReferralHandover, Partner.kind, Partner.status)
                           .join(Partner, Partner.id == ReferralHandover.partner_id)
                           .where(ReferralHandover.referral_id == referral_id)
                           .order_by(ReferralHandover.until)).all()
    return [Holder(h.partner_id, kind, can_earn(h.self_referral, status), h.until)
            for h, kind, status in rows]


def earning_partner(session: Session, referral: Referral, partner: Partner,
                    at: datetime) -> Partner | None:
    """The partner who earns on something of `referral` (held now by `partner`) dated `at`, or
    None: see `holder_at`."""
    current = Holder(partner.id, partner.kind, can_earn(referral.self_referral, partner.status))
    reassigned_later = referral.effective_from is not None and at < referral.effective_from
    held = holder_at(current, referral.effective_from,
                     earlier_holders(session, referral.id) if reassigned_later else [], at)
    if held is None:
        return None
    return partner if held is current else session.get(Partner, held.partner_id)


def can_earn(self_referral: bool, partner_status: str) -> bool:
    """Whether a referral earns at all: never a self-referral, only while the partner is active.
    (The what-if simulation applies the same test.)"""
    return not self_referral and partner_status == "active"


@dataclass(frozen=True)
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


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def referral_json(referral: Referral, customer: Customer | None = None) -> dict[str, Any]:
    out = {"id": referral.id, "program": referral.program, "partner_id": referral.partner_id,
           "source": referral.source, "attributed_at": referral.attributed_at.isoformat(),
           "click_id": referral.click_id, "link_code": referral.link_code,
           "self_referral": referral.self_referral, "flag_reason": referral.flag_reason,
           "effective_from": _iso(referral.effective_from)}
    if customer is not None:
        out.update(provider=customer.provider, customer_ref=customer.ref, email=customer.email)
    return out
