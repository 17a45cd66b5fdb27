"""What the operator admin shows: programs, partners across programs, applications, flags."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.db.models import (
    AuditLog,
    Customer,
    Partner,
    Payout,
    Referral,
    WebhookDelivery,
    WebhookEndpoint,
)

PAGE_SIZE = 50


def search_partners(session: Session, *, q: str = "", program: str = "", status: str = "",
                    kind: str = "", page: int = 1) -> tuple[list[Partner], int]:
    where: list[Any] = []
    if q:
        like = f"%{q}%"
        where.append(Partner.email.ilike(like) | Partner.name.ilike(like) | Partner.code.ilike(like)
                     | (Partner.id == q))
    for column, value in ((Partner.program, program), (Partner.status, status),
                          (Partner.kind, kind)):
        if value:
            where.append(column == value)
    total = int(session.scalar(select(func.count()).select_from(Partner).where(*where)) or 0)
    rows = session.scalars(select(Partner).where(*where).order_by(Partner.created_at.desc())
                           .limit(PAGE_SIZE).offset(max(page - 1, 0) * PAGE_SIZE)).all()
    return list(rows), total


def partner_referrals(session: Session, partner_id: str, limit: int = 100) -> list[Any]:
    return list(session.execute(
        select(Referral.id, Referral.source, Referral.attributed_at, Referral.self_referral,
               Referral.flag_reason, Customer.email, Customer.ref)
        .join(Customer, Customer.id == Referral.customer_id)
        .where(Referral.partner_id == partner_id)
        .order_by(Referral.attributed_at.desc()).limit(limit)).all())


def referral_count(session: Session, partner_id: str) -> int:
    return int(session.scalar(select(func.count()).select_from(Referral)
                              .where(Referral.partner_id == partner_id)) or 0)


def flagged_referrals(session: Session, limit: int = 500) -> list[Any]:
    return list(session.execute(
        select(Referral.id, Referral.program, Referral.partner_id, Referral.attributed_at,
               Referral.flag_reason, Referral.source, Customer.email, Customer.ref,
               Partner.email.label("partner_email"))
        .join(Customer, Customer.id == Referral.customer_id)
        .join(Partner, Partner.id == Referral.partner_id)
        .where(Referral.self_referral.is_(True))
        .order_by(Referral.attributed_at.desc()).limit(limit)).all())


def audit_page(session: Session, page: int, subject: str = "") -> tuple[list[AuditLog], int]:
    where = [AuditLog.subject == subject] if subject else []
    total = int(session.scalar(select(func.count()).select_from(AuditLog).where(*where)) or 0)
    rows = session.scalars(select(AuditLog).where(*where).order_by(AuditLog.id.desc())
                           .limit(PAGE_SIZE).offset(max(page - 1, 0) * PAGE_SIZE)).all()
    return list(rows), total


def payouts_page(session: Session, status: str = "", limit: int = 200) -> list[Payout]:
    query = select(Payout).order_by(Payout.created_at.desc()).limit(limit)
    if status:
        query = query.where(Payout.status == status)
    return list(session.scalars(query))


def dead_letters(session: Session) -> list[Payout]:
    """Payouts the send job gave up on: the operator retries (same batch id) or rejects them."""
    return list(session.scalars(select(Payout).where(Payout.status == "failed",
                                                     Payout.dead_letter.is_(True))
                                .order_by(Payout.updated_at.desc()).limit(200)))


def manual_list(session: Session) -> list[tuple[Payout, Partner]]:
    """Payouts to make by hand (no PayPal address, or a manual method such as bank transfer):
    the periodic manual list and approved requests, with the billing details each payout was
    created with (`Payout.payee_details`), not the partner's current ones."""
    rows = session.execute(select(Payout, Partner).join(Partner, Partner.id == Payout.partner_id)
                           .where(Payout.receiver.is_(None),
                                  Payout.status.in_(("requested", "approved")))
                           .order_by(Payout.created_at).limit(500)).all()
    return [(p, who) for p, who in rows]


def manual_referrals(session: Session, limit: int = 50) -> list[Any]:
    return list(session.execute(
        select(Referral.id, Referral.program, Referral.partner_id, Referral.attributed_at,
               Referral.effective_from, Customer.ref, Customer.provider,
               Partner.email.label("partner_email"))
        .join(Customer, Customer.id == Referral.customer_id)
        .join(Partner, Partner.id == Referral.partner_id)
        .where(Referral.source == "manual")
        .order_by(Referral.attributed_at.desc()).limit(limit)).all())


def webhook_endpoints(session: Session) -> list[WebhookEndpoint]:
    return list(session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.created_at)))


def deliveries_page(session: Session, status: str = "", limit: int = 200) -> list[WebhookDelivery]:
    query = select(WebhookDelivery).order_by(WebhookDelivery.created_at.desc()).limit(limit)
    if status:
        query = query.where(WebhookDelivery.status == status)
    return list(session.scalars(query))
