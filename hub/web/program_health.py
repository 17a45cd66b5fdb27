"""The operator's home page figures: each program's health per currency.

Per program: partners by status, new partners and applications waiting, the funnel of the last
30 days (unique clicks -> sign-ups -> paying customers) and the top 10 partners. Per program and
currency: revenue from referred customers (30 days, 12 months, per month), commission on hold and
available, payouts due and the last one paid.

Each figure is one grouped query over all programs (a dozen statements per page, however many
partners); the balances are read from the ledger checkpoints plus the newer entries.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from hub.db.models import Click, Partner, PaymentRecord, Payout, Referral
from hub.ledger.checkpoints import earned_since, program_balance_sums
from hub.runtime import Hub
from hub.web import trends
from hub.web.portal_data import day_of

RECENT_DAYS = 30
TOP = 10
YEAR = trends.PERIODS["12m"]
# Payouts the hub still owes: asked for, approved, or on their way to the provider.
DUE = ("requested", "approved", "queued", "sent")


@dataclass(frozen=True)
class Funnel:
    """The last 30 days: unique clicks, customers referred (sign-ups), and of those the ones
    who have paid."""

    clicks: int = 0
    signups: int = 0
    paying: int = 0

    def steps(self) -> list[tuple[str, int]]:
        """Short names: the chart writes all three side by side, on a phone too."""
        return [("Clicks", self.clicks), ("Sign-ups", self.signups), ("Paying", self.paying)]


@dataclass
class Money:
    """One program's figures in one currency (amounts in minor units)."""

    currency: str
    revenue_30d: int = 0
    revenue_12m: int = 0
    revenue_by_month: list[tuple[str, int]] = field(default_factory=list)
    on_hold: int = 0
    available: int = 0
    payouts_due: int = 0
    payouts_due_count: int = 0
    last_paid_at: datetime | None = None


@dataclass(frozen=True)
class TopPartner:
    partner_id: str
    name: str
    email: str
    currency: str
    amount: int


@dataclass
class ProgramHealth:
    name: str
    plugin: str
    currency: str
    self_signup: bool
    partners: dict[str, int] = field(default_factory=dict)
    referrals: int = 0
    new_partners: int = 0
    applications: int = 0
    funnel: Funnel = Funnel()
    money: list[Money] = field(default_factory=list)
    top: list[TopPartner] = field(default_factory=list)


def program_health(hub: Hub, session: Session, today: date) -> list[ProgramHealth]:
    """Every running program's figures, in name order (`today`: the current UTC day)."""
    since_30 = today - timedelta(days=RECENT_DAYS - 1)
    year_start = trends.bucket_starts(YEAR, today)[0]
    rows = {name: ProgramHealth(name=name, plugin=p.plugin, currency=p.currency,
                                self_signup=bool(getattr(p.settings, "self_signup", False)))
            for name, p in sorted(hub.programs.items())}
    for program, status, n in partners_by_status(session):
        if program in rows:
            rows[program].partners[status] = n
    for program, n in new_partners(session, _midnight(since_30)):
        if program in rows:
            rows[program].new_partners = n
    for program, n in referrals_by_program(session):
        if program in rows:
            rows[program].referrals = n
    for program, funnel in funnels(session, since_30).items():
        if program in rows:
            rows[program].funnel = funnel
    money: dict[tuple[str, str], Money] = {}

    def money_of(program: str, currency: str) -> Money:
        return money.setdefault((program, currency), Money(currency))

    daily = revenue_by_day(session, year_start)
    for (program, currency), days in daily.items():
        entry = money_of(program, currency)
        entry.revenue_by_month = trends.fold(days, YEAR, today)
        entry.revenue_12m = sum(v for _, v in entry.revenue_by_month)
        entry.revenue_30d = sum(v for d, v in days if since_30 <= d <= today)
    for program, currency, state, total in program_balance_sums(session):
        if state == "pending":
            money_of(program, currency).on_hold = total
        elif state == "payable":
            money_of(program, currency).available = total
    for program, currency, count, total in payouts_due(session):
        entry = money_of(program, currency)
        entry.payouts_due, entry.payouts_due_count = total, count
    for program, currency, when in last_paid(session):
        money_of(program, currency).last_paid_at = when
    for (program, _currency), entry in sorted(money.items()):
        if program in rows and _shown(entry):
            if not entry.revenue_by_month:
                entry.revenue_by_month = trends.fold([], YEAR, today)
            rows[program].money.append(entry)
    for top in top_partners(session, year_start):
        if top[0] in rows:
            rows[top[0]].top.append(top[1])
    for row in rows.values():
        row.applications = row.partners.get("applied", 0)
        if not row.money:  # a program with no money yet still shows its currency, all zero
            row.money.append(Money(row.currency, revenue_by_month=trends.fold([], YEAR, today)))
    return list(rows.values())


def _shown(entry: Money) -> bool:
    return any((entry.revenue_12m, entry.on_hold, entry.available, entry.payouts_due,
                entry.last_paid_at))


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


# -- the queries, one statement each ---------------------------------------------------------

def partners_by_status(session: Session) -> list[tuple[str, str, int]]:
    return [(p, s, int(n)) for p, s, n in session.execute(
        select(Partner.program, Partner.status, func.count())
        .group_by(Partner.program, Partner.status))]


def new_partners(session: Session, since: datetime) -> list[tuple[str, int]]:
    """Partners who joined (any status) since `since`."""
    return [(p, int(n)) for p, n in session.execute(
        select(Partner.program, func.count()).where(Partner.created_at >= since)
        .group_by(Partner.program))]


def referrals_by_program(session: Session) -> list[tuple[str, int]]:
    return [(p, int(n)) for p, n in session.execute(
        select(Referral.program, func.count()).group_by(Referral.program))]


def funnels(session: Session, since: date) -> dict[str, Funnel]:
    """Unique clicks on the days from `since`; customers referred since then, and how many of
    them have paid at least once."""
    clicks: dict[str, Any] = dict(session.execute(
        select(Click.program, func.sum(case((Click.is_unique, 1), else_=0)))
        .where(Click.day >= since.isoformat()).group_by(Click.program)).all())
    paid = select(PaymentRecord.id).where(PaymentRecord.customer_id == Referral.customer_id)
    signups = session.execute(
        select(Referral.program, func.count(),
               func.sum(case((paid.exists(), 1), else_=0)))
        .where(Referral.attributed_at >= _midnight(since)).group_by(Referral.program)).all()
    out = {program: Funnel(clicks=int(n or 0)) for program, n in clicks.items()}
    for program, n, paying in signups:
        out[program] = Funnel(clicks=out.get(program, Funnel()).clicks, signups=int(n),
                              paying=int(paying or 0))
    return out


def revenue_by_day(session: Session, since: date) -> dict[tuple[str, str], list[tuple[date, int]]]:
    """What referred customers paid per program, currency and UTC day from `since` (the
    commissionable amount: net of the tax the provider states apart, before refunds)."""
    day = day_of(PaymentRecord.occurred_at, session)
    rows = session.execute(
        select(Referral.program, PaymentRecord.currency, day, func.sum(PaymentRecord.amount))
        .join(Referral, Referral.customer_id == PaymentRecord.customer_id)
        .where(PaymentRecord.occurred_at >= _midnight(since))
        .group_by(Referral.program, PaymentRecord.currency, day)).all()
    out: dict[tuple[str, str], list[tuple[date, int]]] = defaultdict(list)
    for program, currency, when, total in rows:
        out[(program, currency)].append(
            (when if isinstance(when, date) else date.fromisoformat(str(when)), int(total)))
    return out


def payouts_due(session: Session) -> list[tuple[str, str, int, int]]:
    """(program, currency, count, amount) of the payouts not yet paid."""
    return [(p, c, int(n), int(total)) for p, c, n, total in session.execute(
        select(Payout.program, Payout.currency, func.count(), func.sum(Payout.amount))
        .where(Payout.status.in_(DUE)).group_by(Payout.program, Payout.currency))]


def last_paid(session: Session) -> list[tuple[str, str, datetime]]:
    return [(p, c, when) for p, c, when in session.execute(
        select(Payout.program, Payout.currency, func.max(Payout.updated_at))
        .where(Payout.status == "paid").group_by(Payout.program, Payout.currency))]


def top_partners(session: Session, since: date) -> list[tuple[str, TopPartner]]:
    """Per program and currency, the `TOP` partners by commission earned since the UTC day
    `since` (after reversals; from the ledger checkpoints), ranked in SQL (a window per program
    and currency): only those rows leave the database."""
    earned = earned_since(session, since)
    ranked = (select(Partner.program, earned.c.partner_id, earned.c.currency, earned.c.amount,
                     Partner.name, Partner.email,
                     func.row_number().over(
                         partition_by=(Partner.program, earned.c.currency),
                         order_by=(earned.c.amount.desc(), earned.c.partner_id)).label("rank"))
              .join(Partner, Partner.id == earned.c.partner_id).subquery())
    rows = session.execute(
        select(ranked.c.program, ranked.c.partner_id, ranked.c.currency, ranked.c.amount,
               ranked.c.name, ranked.c.email)
        .where(ranked.c.rank <= TOP, ranked.c.amount > 0)
        .order_by(ranked.c.program, ranked.c.currency, ranked.c.rank)).all()
    return [(program, TopPartner(partner_id, name or email, email, currency, int(amount)))
            for program, partner_id, currency, amount, name, email in rows]
