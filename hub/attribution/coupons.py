"""Coupons and promotion codes mapped to partners: a customer who uses one is attributed.

Operators map the provider's coupon id, promotion-code id or the customer-facing promotion code
(any of them, as the provider shows it) to a partner; connectors report every such string they
find on a checkout, invoice, subscription or customer.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.clock import utcnow
from hub.db.models import CouponCode, Partner
from hub.db.upsert import insert_ignore
from hub.errors import Conflict, Unprocessable


def map_code(session: Session, partner: Partner, provider: str,
             code: str) -> tuple[CouponCode, bool]:
    """Map `code` to `partner`; (row, created). A code mapped to another partner is a 409."""
    code = code.strip()
    if not code or len(code) > 128:
        raise Unprocessable("code must be 1-128 characters", code="invalid_code")
    created = insert_ignore(session, CouponCode, dict(provider=provider, code=code,
                                                      partner_id=partner.id, created_at=utcnow()))
    row = session.scalars(select(CouponCode).where(CouponCode.provider == provider,
                                                   CouponCode.code == code)).one()
    if row.partner_id != partner.id:
        raise Conflict(f"{provider} code {code!r} belongs to another partner", code="code_taken")
    return row, created


def partner_for_codes(session: Session, provider: str, codes: Iterable[str]) -> Partner | None:
    """The partner of the first mapped code among `codes` (in the order the provider gave)."""
    codes = [c for c in codes if c]
    if not codes:
        return None
    rows = {r.code: r.partner_id for r in session.scalars(select(CouponCode).where(
        CouponCode.provider == provider, CouponCode.code.in_(codes)))}
    first = next((rows[c] for c in codes if c in rows), None)
    return session.get(Partner, first) if first else None


def codes_of(session: Session, partner_id: str) -> list[CouponCode]:
    return list(session.scalars(select(CouponCode).where(CouponCode.partner_id == partner_id)
                                .order_by(CouponCode.created_at, CouponCode.id)))
