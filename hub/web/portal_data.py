"""What the partner portal shows, read set-based and always scoped to one partner.

Every function here takes the signed-in `Partner` and filters by its id (and program): there is
no function that reads a referral, commission or payout by id alone. Large lists are paginated;
aggregates are computed in SQL or in one pass over a single query's rows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import Date, cast, func, select
from sqlalchemy.orm import Session

from .. import ledger
from ..db.models import (Commission, Customer, Material, Partner, PaymentRecord, Payout, Referral,
                         SubscriptionState)
from ..errors import NotFound
from ..runtime import Hub
from . import trends

PAGE_SIZE = 50
# Subscription states as the partner reads them (the seeds' Trial / Paying / Cancelled).
CLIENT_STATUS = {"trial": "trial", "active": "paying", "past_due": "paying",
                 "cancelled": "cancelled"}
PENDING_PAYOUT = ("requested", "queued", "sent")
PAYOUT_SHOWN_AS = {"requested": "pending", "queued": "pending", "sent": "pending",
                   "paid": "paid", "dry_run": "paid", "rejected": "rejected", "failed": "failed",
                   "returned": "failed", "unclaimed": "failed"}


@dataclass(frozen=True)
class Money:
    """How this partner's program writes money."""

    currency: str
    locale: str


def money_of(hub: Hub, partner: Partner) -> Money:
    program = hub.program(partner.program)
    if program is None:
        return Money("USD", "en")
    return Money(program.currency, str(getattr(program.settings, "locale", "en")))


def day_of(column: Any, session: Session) -> Any:
    """The UTC calendar day of a timestamp column, in SQL, on either backend."""
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        return cast(func.timezone("UTC", column), Date)
    return func.date(column)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


# -- dashboard -------------------------------------------------------------------------------

def balance_for(session: Session, partner: Partner, currency: str) -> dict[str, int]:
    for entry in ledger.balances(session, partner.id):
        if entry["currency"] == currency:
            return entry
    return {"currency": currency, **{state: 0 for state in ledger.STATES}}  # type: ignore[dict-item]


def total_commission(balance: dict[str, Any]) -> int:
    """Everything earned and not reversed: the whole ledger except what was voided."""
    return int(sum(balance[s] for s in ("pending", "payable", "in_payout", "paid")))


def timelines(session: Session, partner: Partner) -> dict[int, list[tuple[date, str, str | None]]]:
    """Each referred customer's subscription changes (day, status, plan), oldest first."""
    rows = session.execute(
        select(SubscriptionState.customer_id, day_of(SubscriptionState.occurred_at, session),
               SubscriptionState.status, SubscriptionState.plan)
        .join(Referral, Referral.customer_id == SubscriptionState.customer_id)
        .where(Referral.partner_id == partner.id, Referral.program == partner.program)
        .order_by(SubscriptionState.customer_id, SubscriptionState.occurred_at,
                  SubscriptionState.id)).all()
    out: dict[int, list[tuple[date, str, str | None]]] = defaultdict(list)
    for customer_id, day, status, plan in rows:
        out[customer_id].append((_as_date(day), status, plan))
    return out


def current_counts(lines: dict[int, list[tuple[date, str, str | None]]]) -> dict[str, int]:
    counts = {"trial": 0, "paying": 0, "cancelled": 0}
    for changes in lines.values():
        counts[CLIENT_STATUS.get(changes[-1][1], "paying")] += 1
    return counts


def daily_commission(session: Session, partner: Partner, currency: str,
                     since: date) -> list[tuple[date, int]]:
    day = day_of(Commission.earned_at, session)
    rows = session.execute(
        select(day, func.sum(Commission.amount))
        .where(Commission.partner_id == partner.id, Commission.currency == currency,
               Commission.earned_at >= _midnight(since))
        .group_by(day)).all()
    return [(_as_date(d), int(total)) for d, total in rows]


def daily_referrals(session: Session, partner: Partner, since: date) -> list[tuple[date, int]]:
    day = day_of(Referral.attributed_at, session)
    rows = session.execute(
        select(day, func.count()).where(Referral.partner_id == partner.id,
                                        Referral.attributed_at >= _midnight(since))
        .group_by(day)).all()
    return [(_as_date(d), int(n)) for d, n in rows]


def daily_first_payments(session: Session, partner: Partner, since: date) -> list[tuple[date, int]]:
    """New subscriptions: referred customers by the day of their first successful payment."""
    first = (select(func.min(PaymentRecord.occurred_at).label("at"))
             .join(Referral, Referral.customer_id == PaymentRecord.customer_id)
             .where(Referral.partner_id == partner.id, Referral.program == partner.program)
             .group_by(PaymentRecord.customer_id).subquery())
    day = day_of(first.c.at, session)
    rows = session.execute(select(day, func.count()).where(first.c.at >= _midnight(since))
                           .group_by(day)).all()
    return [(_as_date(d), int(n)) for d, n in rows]


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def link_counts(session: Session, partner: Partner, limit: int = 5) -> list[tuple[str, int]]:
    """Link codes by the number of clients registered through them (top first)."""
    rows = session.execute(
        select(Referral.link_code, func.count()).where(
            Referral.partner_id == partner.id, Referral.link_code.is_not(None))
        .group_by(Referral.link_code).order_by(func.count().desc(), Referral.link_code)
        .limit(limit)).all()
    return [(code, int(n)) for code, n in rows]


@dataclass(frozen=True)
class WithdrawState:
    allowed: bool
    reason: str


def withdraw_state(hub: Hub, session: Session, partner: Partner, money: Money,
                   payable: int) -> WithdrawState:
    """Whether the Withdraw button may be pressed, and if not, why (shown next to it)."""
    from ..money import format_money

    program = hub.program(partner.program)
    if program is None:
        return WithdrawState(False, "This program is no longer running.")
    policy = hub.payout_policy(program, partner.kind)
    minimum = format_money(policy.minimum, money.currency, money.locale)
    if policy.mode != "request":
        return WithdrawState(False, f"Payouts are made for you ({policy.mode}) once your balance "
                                    f"reaches {minimum}.")
    if payable < policy.minimum:
        return WithdrawState(False, f"Your balance is below the {minimum} minimum.")
    pending = session.scalar(select(func.count()).select_from(Payout).where(
        Payout.partner_id == partner.id, Payout.status.in_(PENDING_PAYOUT)))
    if policy.one_pending and pending:
        return WithdrawState(False, "A withdrawal you requested is still being processed.")
    # Second pass (issue 5): withdrawal requests. Until then the button stays disabled.
    return WithdrawState(False, "Withdrawal requests are not open yet.")


def trend_series(session: Session, partner: Partner, money: Money, period: trends.Period,
                 today: date, lines: dict[int, list[tuple[date, str, str | None]]]) -> dict[str, Any]:
    since = trends.bucket_starts(period, today)[0]
    days = trends.sample_days(period, today)
    spans = [[(d, s) for d, s, _ in changes] for changes in lines.values()]
    return {
        "commission": trends.fold(daily_commission(session, partner, money.currency, since),
                                  period, today),
        "new_trials": trends.fold(daily_referrals(session, partner, since), period, today),
        "new_subscriptions": trends.fold(daily_first_payments(session, partner, since),
                                         period, today),
        "active_trials": _sampled(days, trends.counts_over_time(spans, {"trial"}, days), period),
        "active_subscriptions": _sampled(days, trends.counts_over_time(
            spans, {"active", "past_due"}, days), period),
    }


def _sampled(days: list[date], counts: list[int], period: trends.Period) -> list[tuple[str, int]]:
    return [(trends.label(trends.bucket_start(d, period.unit), period.unit), n)
            for d, n in zip(days, counts)]


# -- referrals -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClientRow:
    id: int
    email: str | None
    source: str
    link_code: str | None
    attributed_at: datetime
    plan: str | None
    status: str
    since: date | None
    earned: int
    self_referral: bool


def referral_page(session: Session, partner: Partner, currency: str, page: int,
                  status: str = "") -> tuple[list[ClientRow], int]:
    """One page of the partner's referrals (newest first) and the total count."""
    where = [Referral.partner_id == partner.id, Referral.program == partner.program]
    total = int(session.scalar(select(func.count()).select_from(Referral).where(*where)) or 0)
    rows = session.execute(
        select(Referral.id, Referral.customer_id, Referral.source, Referral.link_code,
               Referral.attributed_at, Referral.self_referral, Customer.email)
        .join(Customer, Customer.id == Referral.customer_id).where(*where)
        .order_by(Referral.attributed_at.desc(), Referral.id.desc())
        .limit(PAGE_SIZE).offset(max(page - 1, 0) * PAGE_SIZE)).all()
    latest = _latest_states(session, [r.customer_id for r in rows])
    earned = _earned_by_referral(session, partner, currency, [r.id for r in rows])
    return [_client_row(r, latest.get(r.customer_id), earned.get(r.id, 0)) for r in rows], total


def _client_row(r: Any, state: tuple[str, str | None, datetime] | None, earned: int) -> ClientRow:
    status, plan, since = state if state else ("", None, None)
    return ClientRow(id=r.id, email=r.email, source=r.source, link_code=r.link_code,
                     attributed_at=r.attributed_at, plan=plan,
                     status=CLIENT_STATUS.get(status, "signed up"),
                     since=since.date() if since else None, earned=earned,
                     self_referral=r.self_referral)


def _latest_states(session: Session, customer_ids: list[int]) -> dict[int, tuple[str, str | None, datetime]]:
    if not customer_ids:
        return {}
    rows = session.execute(
        select(SubscriptionState.customer_id, SubscriptionState.status, SubscriptionState.plan,
               SubscriptionState.occurred_at)
        .where(SubscriptionState.customer_id.in_(customer_ids))
        .order_by(SubscriptionState.occurred_at, SubscriptionState.id)).all()
    latest: dict[int, tuple[str, str | None, datetime]] = {}
    for customer_id, status, plan, at in rows:
        previous_plan = latest.get(customer_id, ("", None, at))[1]
        latest[customer_id] = (status, plan or previous_plan, at)
    return latest


def _earned_by_referral(session: Session, partner: Partner, currency: str,
                        referral_ids: list[int]) -> dict[int, int]:
    """Money a client brought the partner: the net of its commission lines (reversals included)."""
    if not referral_ids:
        return {}
    rows = session.execute(
        select(Commission.referral_id, func.sum(Commission.amount))
        .where(Commission.partner_id == partner.id, Commission.currency == currency,
               Commission.referral_id.in_(referral_ids))
        .group_by(Commission.referral_id)).all()
    return {rid: int(total) for rid, total in rows}


def referral_detail(session: Session, partner: Partner, referral_id: int) -> dict[str, Any]:
    """One referral of this partner, or 404 (also when it belongs to someone else)."""
    referral = session.scalars(select(Referral).where(
        Referral.id == referral_id, Referral.partner_id == partner.id)).first()
    if referral is None:
        raise NotFound("no such client")
    customer = session.get(Customer, referral.customer_id)
    states = session.scalars(select(SubscriptionState).where(
        SubscriptionState.customer_id == referral.customer_id)
        .order_by(SubscriptionState.occurred_at, SubscriptionState.id)).all()
    payments = session.scalars(select(PaymentRecord).where(
        PaymentRecord.customer_id == referral.customer_id)
        .order_by(PaymentRecord.occurred_at.desc()).limit(200)).all()
    lines = session.scalars(select(Commission).where(
        Commission.partner_id == partner.id, Commission.referral_id == referral.id)
        .order_by(Commission.earned_at.desc(), Commission.id)).all()
    return {"referral": referral, "customer": customer, "states": states, "payments": payments,
            "lines": lines}


# -- transactions, payouts, materials --------------------------------------------------------

def commission_page(session: Session, partner: Partner, page: int) -> tuple[list[ledger.LineView], int]:
    """One page of commission lines, newest first. The page's ids are picked first (an index walk
    on partner + created_at), so the per-line state is derived for 50 lines, not for all."""
    total = int(session.scalar(select(func.count()).select_from(Commission).where(
        Commission.partner_id == partner.id)) or 0)
    ids = list(session.scalars(select(Commission.id).where(Commission.partner_id == partner.id)
                               .order_by(Commission.created_at.desc(), Commission.id)
                               .limit(PAGE_SIZE).offset(max(page - 1, 0) * PAGE_SIZE)))
    return _lines_with_state(session, partner, ids), total


def _lines_with_state(session: Session, partner: Partner, ids: list[str]) -> list[ledger.LineView]:
    if not ids:
        return []
    return ledger.commission_lines(session, partner.id, ids=ids, limit=len(ids))


def payouts_of(session: Session, partner: Partner, limit: int = 200) -> list[Payout]:
    return list(session.scalars(select(Payout).where(Payout.partner_id == partner.id)
                                .order_by(Payout.created_at.desc()).limit(limit)))


def payout_counts(session: Session, partner: Partner) -> dict[str, int]:
    rows = session.execute(select(Payout.status, func.count()).where(
        Payout.partner_id == partner.id).group_by(Payout.status)).all()
    counts: dict[str, int] = defaultdict(int)
    for status, n in rows:
        counts[PAYOUT_SHOWN_AS.get(status, status)] += int(n)
    return dict(counts)


def materials_for(session: Session, program: str) -> list[Material]:
    return list(session.scalars(select(Material).where(
        (Material.program.is_(None)) | (Material.program == program))
        .order_by(Material.created_at.desc())))


def material_for(session: Session, program: str, material_id: str) -> Material:
    material = session.get(Material, material_id)
    if material is None or material.program not in (None, program):
        raise NotFound("no such material")
    return material


def today_utc() -> date:
    from ..clock import utcnow

    return utcnow().date()

