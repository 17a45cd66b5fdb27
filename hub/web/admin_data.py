"""What the operator admin shows: programs, partners across programs, applications, flags."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..db.models import AuditLog, Commission, Customer, Partner, Payout, Referral
from ..runtime import Hub

PAGE_SIZE = 50


@dataclass(frozen=True)
class ProgramRow:
    name: str
    plugin: str
    currency: str
    self_signup: bool
    partners: dict[str, int]
    referrals: int
    commission: dict[str, int]


def programs_overview(hub: Hub, session: Session) -> list[ProgramRow]:
    partners: dict[str, dict[str, int]] = defaultdict(dict)
    for program, status, n in session.execute(select(Partner.program, Partner.status, func.count())
                                              .group_by(Partner.program, Partner.status)):
        partners[program][status] = int(n)
    referrals = dict(session.execute(select(Referral.program, func.count())
                                     .group_by(Referral.program)).all())
    commission: dict[str, dict[str, int]] = defaultdict(dict)
    for program, currency, total in session.execute(
            select(Commission.program, Commission.currency, func.sum(Commission.amount))
            .group_by(Commission.program, Commission.currency)):
        commission[program][currency] = int(total)
    return [ProgramRow(name=name, plugin=p.plugin, currency=p.currency,
                       self_signup=bool(getattr(p.settings, "self_signup", False)),
                       partners=partners.get(name, {}), referrals=int(referrals.get(name, 0)),
                       commission=commission.get(name, {}))
            for name, p in sorted(hub.programs.items())]


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
