"""Operator attribution: attach a customer to a partner by hand (source ``manual``), or reassign.

A first assignment behaves like any first attribution: the customer's known payments earn for
the partner. A reassignment moves the customer for the future only: commissions already booked
stay with the earlier partner (refunds of those payments still reverse them there), payments
dated before `effective_from` that arrive later still earn for the earlier partner (a handover
row remembers who held the customer until when), and the new partner earns on payments from
`effective_from` on.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.attribution.customers import (
    attribute,
    can_attribute,
    ensure_customer,
    self_referral_reason,
)
from hub.clock import utcnow
from hub.db.audit import record_action
from hub.db.models import Customer, Partner, Referral, ReferralHandover
from hub.errors import Unprocessable
from hub.ingest.apply import settle_customer
from hub.runtime import Hub


def assign(hub: Hub, session: Session, partner: Partner, *, provider: str, customer_ref: str,
           at: datetime, actor: str, email: str | None = None) -> tuple[Referral, str]:
    """Attach or reassign; returns the referral and what happened: ``assigned``,
    ``reassigned`` or ``unchanged``."""
    if not can_attribute(hub, partner):
        raise Unprocessable("the partner cannot be credited (not active, or agreement missing)",
                            code="partner_inactive")
    customer = ensure_customer(session, provider, customer_ref, at, email=email)
    existing = _locked_referral(session, partner.program, customer.id)
    if existing is None:
        referral = attribute(hub, session, customer, partner, source="manual", at=at)
        assert referral is not None  # nothing held the customer and the partner can attribute
        settle_customer(hub, session, customer)
        outcome = "assigned"
    elif existing.partner_id == partner.id:
        return existing, "unchanged"
    elif existing.effective_from is not None and at <= existing.effective_from:
        raise Unprocessable("effective_from must follow the last reassignment",
                            code="invalid_field")
    else:
        previous = existing.partner_id
        referral, outcome = _reassign(session, existing, partner, customer, at), "reassigned"
        record_action(session, actor, "referral.reassign", str(referral.id),
                      previous_partner_id=previous, partner_id=partner.id,
                      effective_from=at.isoformat())
        return referral, outcome
    record_action(session, actor, "referral.assign", str(referral.id), partner_id=partner.id,
                  customer=f"{provider}:{customer_ref}")
    return referral, outcome


def _reassign(session: Session, referral: Referral, partner: Partner, customer: Customer,
              at: datetime) -> Referral:
    session.add(ReferralHandover(referral_id=referral.id, partner_id=referral.partner_id,
                                 source=referral.source, attributed_at=referral.attributed_at,
                                 until=at, self_referral=referral.self_referral,
                                 created_at=utcnow()))
    reason = self_referral_reason(partner, customer)
    referral.partner_id, referral.source, referral.attributed_at = partner.id, "manual", at
    referral.effective_from, referral.click_id, referral.link_code = at, None, None
    referral.self_referral, referral.flag_reason = reason is not None, reason
    return referral


def _locked_referral(session: Session, program: str, customer_id: int) -> Referral | None:
    stmt = select(Referral).where(Referral.program == program, Referral.customer_id == customer_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()
