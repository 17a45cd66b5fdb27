"""Who holds a referral, and who earned on it when: the ownership rule (`holder_at`) that live
processing, `hub tick` and the what-if simulation share, and the referral's JSON shape.

Operator assignments and reassignments, which write handovers, are in `hub.ingest.assignments`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
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
