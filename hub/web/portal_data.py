"""What the partner portal shows, read set-based and always scoped to one partner.

Every function here takes the signed-in `Partner` and filters by its id (and program): there is
no function that reads a referral, commission or payout by id alone. Large lists are paginated;
aggregates are computed in SQL or in one pass over a single query's rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Date, and_, cast, func, or_, select, union
from sqlalchemy.orm import Session
from starlette.responses import Response

from hub.attribution import counts as referral_counts
from hub.attribution.links import daily_clicks, default_trial, share_url
from hub.clock import utcnow
from hub.db.models import (
    Click,
    Commission,
    Customer,
    InstallRecord,
    Link,
    Material,
    Partner,
    PaymentRecord,
    Payout,
    Referral,
    SubscriptionState,
)
from hub.errors import NotFound
from hub.ingest.decide import pays_for_installs
from hub.ledger import entries as ledger
from hub.ledger import statuses
from hub.ledger.checkpoints import daily_commission as checkpointed
from hub.money import format_money
from hub.payouts.gateway import has_gateway, payee_of
from hub.payouts.payee import MANUAL, state_of
from hub.payouts.policy import policy_for
from hub.payouts.states import OPEN
from hub.runtime import Hub
from hub.web import trends

PAGE_SIZE = 50
# Subscription states as the partner reads them (the seeds' Trial / Paying / Cancelled).
CLIENT_STATUS = {"trial": "trial", "active": "paying", "past_due": "paying",
                 "cancelled": "cancelled"}
PENDING_PAYOUT = ("requested", "queued", "sent")
# A withdrawal under way reads "processing": "pending" is not used for it, so that the one word
# for commission still in its hold is "On hold" (hub.web.formatting.STATE_LABELS).
PAYOUT_SHOWN_AS = {"requested": "processing", "approved": "processing", "queued": "processing",
                   "sent": "processing",
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

def balance_for(balances: list[dict[str, Any]], currency: str) -> dict[str, int]:
    """The partner's balance in its program's currency, from `ledger.balances`."""
    for entry in balances:
        if entry["currency"] == currency:
            return entry
    return {"currency": currency, **{state: 0 for state in ledger.STATES}}  # type: ignore[dict-item]


def total_commission(balance: dict[str, Any]) -> int:
    """Everything earned and not reversed: the whole ledger except what was voided."""
    return int(sum(balance[s] for s in ("pending", "payable", "in_payout", "paid")))


def tallies(session: Session, partner: Partner) -> dict[str, dict[str, int]]:
    """The partner's clients per status and per link code, for the functions below."""
    return referral_counts.counts(session, partner.id)


def current_counts(session: Session, partner: Partner,
                   counted: dict[str, dict[str, int]] | None = None) -> dict[str, int]:
    """Clients by where they stand now (the `customer_statuses` projection)."""
    counts = {"trial": 0, "paying": 0, "cancelled": 0}
    by_status = (counted or tallies(session, partner))["status"]
    for status, n in by_status.items():
        counts[CLIENT_STATUS.get(status, "paying")] += n
    return counts


def active_over_time(session: Session, partner: Partner, days: list[date], today: date,
                     now_counts: dict[str, int],
                     snapshots: dict[date, dict[str, int]] | None = None) -> dict[str, list[int]]:
    """Trials and paying clients at the end of each of `days`: closed days from the snapshots
    `hub tick` writes (read here unless given), today from the live projection. Missing
    snapshots (tick has not run yet) are computed from the timelines instead: correct, only
    slower."""
    past = [d for d in days if d < today]
    stored = ({d: snapshots[d] for d in past if d in snapshots} if snapshots is not None
              else statuses.snapshots(session, partner.id, past))
    if len(stored) < len(past):
        deltas = statuses.status_deltas(session, partner.id).get(partner.id)
        empty: dict[date, int] = {}
        stored = {d: {"trials": t, "paying": p} for d, t, p in zip(
            past, statuses.counts_on(deltas["trials"] if deltas else empty, past),
            statuses.counts_on(deltas["paying"] if deltas else empty, past), strict=True)}
    now = {"trials": now_counts["trial"], "paying": now_counts["paying"]}
    return {name: [stored[d][name] if d < today else now[name] for d in days]
            for name in ("trials", "paying")}


def daily_commission(session: Session, partner: Partner, currency: str, since: date,
                     today: date) -> list[tuple[date, int]]:
    return checkpointed(session, partner.id, currency, since, today)


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


def new_per_day(session: Session, partner: Partner, since: date, today: date,
                snapshots: dict[date, dict[str, int]] | None = None
                ) -> dict[str, list[tuple[date, int]]]:
    """New trials and new subscriptions per day from `since` to today: closed days from the
    snapshots `hub tick` writes (read here unless given), today live. Missing snapshots (tick
    has not run yet) are computed from the referrals and payments instead: correct, only
    slower."""
    stored = (snapshots if snapshots is not None else
              statuses.snapshot_range(session, partner.id, since, today - timedelta(days=1)))
    if len(stored) < (today - since).days:
        return {"new_trials": daily_referrals(session, partner, since),
                "new_subscriptions": daily_first_payments(session, partner, since)}
    live = statuses.news_of_today(session, partner.id, today)
    return {name: [(d, row[name]) for d, row in stored.items()] + [(today, live[name])]
            for name in ("new_trials", "new_subscriptions")}


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def link_counts(session: Session, partner: Partner, limit: int = 5,
                counted: dict[str, dict[str, int]] | None = None) -> list[tuple[str, int]]:
    """Link codes by the number of clients registered through them (top first)."""
    counts = (counted or tallies(session, partner))["link"]
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]


def recent_links(session: Session, partner: Partner, limit: int = 5,
                 counted: dict[str, dict[str, int]] | None = None) -> list[tuple[Link, int]]:
    """The partner's newest links with the number of clients registered through each."""
    links = list(session.scalars(select(Link).where(Link.partner_id == partner.id)
                                 .order_by(Link.created_at.desc(), Link.code).limit(limit)))
    counts = (counted or tallies(session, partner))["link"] if links else {}
    return [(link, int(counts.get(link.code, 0))) for link in links]


def unique_clicks(session: Session, partner: Partner, since: date) -> int:
    return int(session.scalar(select(func.count()).select_from(Click).where(
        Click.partner_id == partner.id, Click.day >= since.isoformat(),
        Click.is_unique.is_(True))) or 0)


@dataclass(frozen=True)
class ShareLink:
    """The partner's default link as the dashboard offers it: the whole URL, and the trial it
    passes on (`links.default_trial`)."""

    url: str
    trial_days: int | None


def share_link(hub: Hub, partner: Partner) -> ShareLink:
    return ShareLink(share_url(hub.config, partner.code),
                     default_trial(hub.program(partner.program)))


def conversions(hub: Hub, session: Session, partner: Partner) -> dict[str, int] | None:
    """Installs and conversions, for programs that pay for installations (Callbell's Rewards
    stats: "how many people have installed the widget and/or paid a license"); None elsewhere.

    installs: installations reported for the partner's referred accounts (by the account, or by
    the install id the account carries); conversions: referred accounts with an installation or
    a payment, each counted once."""
    program = hub.program(partner.program)
    if program is None or not pays_for_installs(hub, program):
        return None
    referred = select(Referral.customer_id).where(Referral.partner_id == partner.id,
                                                   Referral.program == partner.program)
    installed = (select(Customer.id.label("customer_id"), InstallRecord.id.label("install"))
                 .join(InstallRecord, or_(
                     and_(InstallRecord.customer_provider == Customer.provider,
                          InstallRecord.customer_ref == Customer.ref),
                     InstallRecord.install_id == Customer.install_id))
                 .where(Customer.id.in_(referred)).subquery())
    installs = session.scalar(select(func.count(func.distinct(installed.c.install))))
    paid = select(PaymentRecord.customer_id).where(PaymentRecord.customer_id.in_(referred))
    converted = union(select(installed.c.customer_id), paid).subquery()
    return {"installs": int(installs or 0),
            "conversions": int(session.scalar(select(func.count()).select_from(converted)) or 0)}


IMAGE_CREATIVES = ("banner", "logo", "screenshot")


def creative_images(config: Any) -> dict[str, str]:
    """The image of each image creative the operator configured (`[links] banner_url`, ...),
    for the previews in the links report."""
    return {c: url for c in IMAGE_CREATIVES if (url := getattr(config.links, f"{c}_url", ""))}


def with_image_sources(response: Response, urls: Iterable[str]) -> Response:
    """Let the page show images from the creatives' hosts: the pages' Content-Security-Policy
    allows only the hub's own images otherwise."""
    origins = sorted({f"{p.scheme}://{p.netloc}" for p in map(urlsplit, urls)
                      if p.scheme in ("http", "https") and p.netloc})
    if origins:
        policy = response.headers["Content-Security-Policy"]
        response.headers["Content-Security-Policy"] = policy.replace(
            "img-src 'self' data:", "img-src 'self' data: " + " ".join(origins), 1)
    return response


def link_of(session: Session, partner: Partner, code: str) -> Link:
    """One of this partner's links, or 404 (also when the code is someone else's)."""
    link = session.scalars(select(Link).where(Link.code == code,
                                              Link.partner_id == partner.id)).first()
    if link is None:
        raise NotFound("no such link")
    return link


@dataclass(frozen=True)
class WithdrawState:
    allowed: bool
    reason: str
    methods: tuple[str, ...] = ()


def withdraw_state(hub: Hub, session: Session, partner: Partner, money: Money,
                   payable: int, held: int = 0) -> WithdrawState:
    """Whether the Withdraw button may be pressed, and if not, the real reason (shown next to
    it): a withdrawal already under way, money still on hold (`held`: the pending balance), the
    minimum, a missing PayPal address. Only a hint: the payouts core decides when the form is
    posted (`payouts.request_withdrawal`)."""
    program = hub.program(partner.program)
    if program is None:
        return WithdrawState(False, "This program is no longer running.")
    policy = policy_for(hub, program, partner)

    def fmt(amount: int) -> str:
        return format_money(amount, money.currency, money.locale)

    minimum = fmt(max(policy.minimum, 1))
    unconfirmed = (state_of(partner) == "unconfirmed"
                   and any(has_gateway(hub, m) for m in policy.methods))
    if unconfirmed and policy.mode != "request":
        return WithdrawState(False, f"No payout is made until you confirm your PayPal address "
                                    f"{partner.paypal_email}: open the link we mailed there "
                                    "(Settings sends it again).")
    if policy.mode == "manual" and partner.payout_method == MANUAL:
        return WithdrawState(False, f"You have no PayPal account: you are paid by hand every "
                                    f"{policy.every_months or 3} months once your available "
                                    f"balance reaches {minimum}; the operator agrees with you "
                                    "how.")
    if policy.mode != "request":
        return WithdrawState(False, f"Payouts are made for you ({policy.mode}) once your "
                                    f"available balance reaches {minimum}.")
    open_requests = session.scalar(select(func.count()).select_from(Payout).where(
        Payout.partner_id == partner.id, Payout.status.in_(OPEN)))
    if policy.one_pending and open_requests:
        return WithdrawState(False, "A withdrawal you requested is still being processed; you "
                                    "can ask for the next one once it is paid.")
    if payable < max(policy.minimum, 1):
        if held > 0:
            until = _first_release(session, partner, money.currency)
            when = f" (the first of it is released on {until:%Y-%m-%d})" if until else ""
            if payable <= 0:
                return WithdrawState(False, f"Your {fmt(held)} is still on hold{when}: nothing "
                                            f"is available to withdraw yet (minimum {minimum}).")
            return WithdrawState(False, f"{fmt(payable)} is available, below the {minimum} "
                                        f"minimum; {fmt(held)} more is on hold{when}.")
        if payable <= 0:
            return WithdrawState(False, "Nothing to withdraw yet: commission shows here once "
                                        "your clients pay.")
        return WithdrawState(False, f"Your available {fmt(payable)} is below the {minimum} "
                                    "minimum.")
    methods = tuple(m for m in policy.methods
                    if not has_gateway(hub, m) or payee_of(hub, partner, m))
    if not methods and unconfirmed:
        return WithdrawState(False, f"Confirm your PayPal address {partner.paypal_email} to "
                                    "withdraw: open the link we mailed there (Settings sends it "
                                    "again).")
    if not methods:
        return WithdrawState(False, "Add your PayPal e-mail in Settings to withdraw.")
    return WithdrawState(True, f"You can withdraw {fmt(payable)}.", methods)


def _first_release(session: Session, partner: Partner, currency: str) -> datetime | None:
    """When the earliest commission still on hold leaves its hold (None: already due, it is
    released by the next `hub tick`)."""
    value = session.scalar(select(func.min(Commission.available_at)).where(
        Commission.partner_id == partner.id, Commission.currency == currency,
        Commission.amount > 0, Commission.available_at > utcnow()))
    return value if isinstance(value, datetime) else None


def trend_series(session: Session, partner: Partner, money: Money, period: trends.Period,
                 today: date, now_counts: dict[str, int]) -> dict[str, Any]:
    since = trends.bucket_starts(period, today)[0]
    days = trends.sample_days(period, today)
    stored = statuses.snapshot_range(session, partner.id, since, today - timedelta(days=1))
    active = active_over_time(session, partner, days, today, now_counts, stored)
    news = new_per_day(session, partner, since, today, stored)
    return {
        "commission": trends.fold(daily_commission(session, partner, money.currency, since, today),
                                  period, today),
        "new_trials": trends.fold(news["new_trials"], period, today),
        "new_subscriptions": trends.fold(news["new_subscriptions"], period, today),
        "unique_clicks": trends.fold(daily_unique_clicks(session, partner, since, today),
                                     period, today),
        "active_trials": _sampled(days, active["trials"], period),
        "active_subscriptions": _sampled(days, active["paying"], period),
    }


def _sampled(days: list[date], counts: list[int], period: trends.Period) -> list[tuple[str, int]]:
    return [(trends.label(trends.bucket_start(d, period.unit), period.unit), n)
            for d, n in zip(days, counts, strict=True)]


def daily_unique_clicks(session: Session, partner: Partner, since: date,
                        today: date) -> list[tuple[date, int]]:
    return [(date.fromisoformat(row["day"]), row["unique_clicks"])
            for row in daily_clicks(session, partner.id, since, today)]


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
    expires: date | None = None


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


# (status, plan, since, expires) of a client's subscription now
ClientState = tuple[str, str | None, datetime, datetime | None]


def _client_row(r: Any, state: ClientState | None, earned: int) -> ClientRow:
    status, plan, since, expires = state if state else ("", None, None, None)
    return ClientRow(id=r.id, email=r.email, source=r.source, link_code=r.link_code,
                     attributed_at=r.attributed_at, plan=plan,
                     status=CLIENT_STATUS.get(status, "signed up"),
                     since=since.date() if since else None, earned=earned,
                     self_referral=r.self_referral,
                     expires=expires.date() if expires else None)


def _latest_states(session: Session, customer_ids: list[int]) -> dict[int, ClientState]:
    """Each customer's latest status and plan, and when its current trial or period ends (CallPage's
    "Expires"): the end the latest fact named; a fact that names none (a paid invoice) keeps the
    one before it while the status stays the same (a trial's end is no paid period's end)."""
    if not customer_ids:
        return {}
    rows = session.execute(
        select(SubscriptionState.customer_id, SubscriptionState.status, SubscriptionState.plan,
               SubscriptionState.occurred_at, SubscriptionState.ends_at)
        .where(SubscriptionState.customer_id.in_(customer_ids))
        .order_by(SubscriptionState.occurred_at, SubscriptionState.id)).all()
    latest: dict[int, ClientState] = {}
    for customer_id, status, plan, at, ends in rows:
        previous, previous_plan, _, previous_end = latest.get(customer_id, ("", None, at, None))
        kept = previous_end if previous == status else None
        latest[customer_id] = (status, plan or previous_plan, at, ends or kept)
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
    return {rid: int(total) for rid, total in rows if rid is not None}


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

def commission_page(session: Session, partner: Partner,
                    page: int) -> tuple[list[ledger.LineView], int]:
    """One page of commission lines, newest first. The page's ids are picked first (an index walk
    on partner + created_at), so the per-line state is derived for 50 lines, not for all."""
    total = int(session.scalar(select(func.count()).select_from(Commission).where(
        Commission.partner_id == partner.id)) or 0)
    ids = list(session.scalars(select(Commission.id).where(Commission.partner_id == partner.id)
                               .order_by(Commission.created_at.desc(), Commission.id)
                               .limit(PAGE_SIZE).offset(max(page - 1, 0) * PAGE_SIZE)))
    return _lines_with_state(session, partner, ids), total


def line_plans(session: Session, partner: Partner,
               lines: list[ledger.LineView]) -> dict[str, str]:
    """The plan each line's payment was for (CrazyCall's "what your referrals paid for"), by
    commission id; a reversal names the plan of the line it reverses. Lines without a plan (an
    installation, a bounty whose payment named none) are left out."""
    commissions = [v.commission for v in lines]
    reversed_ids = [c.reverses_id for c in commissions if c.reverses_id and not c.payment_id]
    payment_of: dict[str, int] = {c.id: c.payment_id for c in commissions if c.payment_id}
    if reversed_ids:
        payment_of.update((cid, int(pid)) for cid, pid in session.execute(
            select(Commission.id, Commission.payment_id).where(
                Commission.partner_id == partner.id, Commission.id.in_(reversed_ids),
                Commission.payment_id.is_not(None))) if pid is not None)
    if not payment_of:
        return {}
    plans = {int(pid): str(plan) for pid, plan in session.execute(
        select(PaymentRecord.id, PaymentRecord.plan).where(
            PaymentRecord.id.in_(set(payment_of.values())), PaymentRecord.plan.is_not(None)))}
    return {c.id: plans[pid] for c in commissions
            if (pid := payment_of.get(c.id) or payment_of.get(c.reverses_id or "")) in plans}


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
    return utcnow().date()

