"""Where referred customers stand: the latest subscription status per customer, and daily counts of
each partner's customers in trial and paying, so the portal never replays every status change.

`record_state` is how a subscription fact is stored: the timeline row (once per provider fact) and
the `customer_statuses` projection, where the newest `occurred_at` wins whatever order facts
arrive in (on an exact tie, the later status in `TIE_ORDER`). `snapshot_activity` is a `hub tick`
job: per partner, the counts at the end of each closed UTC day, from the timelines, set-based.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, and_, case, cast, delete, func, insert, or_, select, true, update
from sqlalchemy.orm import Session, aliased

from hub.attribution.counts import forget_counts
from hub.db.models import ActivityDay, CustomerStatus, PaymentRecord, Referral, SubscriptionState
from hub.db.upsert import insert_ignore, many_rows
from hub.runtime import Hub

# Which statuses each count holds (the portal's "active trials" and "active subscriptions").
CLASSES = {"trials": ("trial",), "paying": ("active", "past_due")}
# Two facts at the same instant: the one further along the life of a subscription wins.
TIE_ORDER = ("trial", "active", "past_due", "cancelled")
# Days kept per partner, and closed days recomputed on every tick (late facts change them).
SNAPSHOT_DAYS = 400
RECOMPUTED_DAYS = 35


def record_state(session: Session, values: dict[str, Any]) -> bool:
    """Store one subscription fact (a `subscription_states` row); True when it is new. Keeps
    `customer_statuses` on the newest fact: idempotent and order-safe."""
    if not insert_ignore(session, SubscriptionState, values):
        return False
    customer_id, status, at = values["customer_id"], values["status"], values["occurred_at"]
    row = dict(status=status, occurred_at=at,
               **({"plan": values["plan"]} if values.get("plan") else {}))
    if insert_ignore(session, CustomerStatus, dict(customer_id=customer_id, **row)):
        return True
    rank = case({s: i for i, s in enumerate(TIE_ORDER)}, value=CustomerStatus.status, else_=-1)
    mine = TIE_ORDER.index(status) if status in TIE_ORDER else -1
    session.execute(update(CustomerStatus).where(
        CustomerStatus.customer_id == customer_id,
        or_(CustomerStatus.occurred_at < at,
            and_(CustomerStatus.occurred_at == at, rank < mine))).values(**row))
    return True


def _rank(status: str) -> int:
    return TIE_ORDER.index(status) if status in TIE_ORDER else -1


def fold_status(current: Any, states: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The `customer_statuses` row after `record_state` met new `states` one after the other,
    starting from `current` (the stored row, or None): the same rule, in memory, for a batch.
    None when nothing changes."""
    row = None if current is None else dict(status=current.status, plan=current.plan,
                                             occurred_at=current.occurred_at)
    changed = False
    for state in states:
        status, at, plan = state["status"], state["occurred_at"], state.get("plan")
        if row is None or row["occurred_at"] < at or (
                row["occurred_at"] == at and _rank(row["status"]) < _rank(status)):
            kept = row["plan"] if row is not None else None
            row, changed = dict(status=status, occurred_at=at, plan=plan or kept), True
    return row if changed else None


def status_upsert_statement(session: Session, rows: list[dict[str, Any]]) -> tuple[Any, Any]:
    """Folded `customer_statuses` rows as one statement and its parameters (for
    `hub.db.pipelined.run_together`). The newest fact still wins if another process wrote the
    customer's row since it was read."""
    return many_rows(session, CustomerStatus.__table__, rows, _newer_wins)


def _newer_wins(stmt: Any) -> Any:
    new = stmt.excluded
    ranks = {s: i for i, s in enumerate(TIE_ORDER)}
    stored_rank = case(ranks, value=CustomerStatus.status, else_=-1)
    new_rank = case(ranks, value=new.status, else_=-1)
    return stmt.on_conflict_do_update(
        index_elements=[CustomerStatus.customer_id],
        set_=dict(status=new.status, occurred_at=new.occurred_at, plan=new.plan),
        where=or_(CustomerStatus.occurred_at < new.occurred_at,
                  and_(CustomerStatus.occurred_at == new.occurred_at, stored_rank < new_rank)))


def snapshots(session: Session, partner_id: str, days: list[date]) -> dict[date, dict[str, int]]:
    """The stored end-of-day counts for `days` (missing days are left out)."""
    keys = [d.isoformat() for d in days]
    rows = session.scalars(select(ActivityDay).where(ActivityDay.partner_id == partner_id,
                                                     ActivityDay.day.in_(keys)))
    return {date.fromisoformat(r.day): {"trials": r.trials, "paying": r.paying} for r in rows}


def snapshot_range(session: Session, partner_id: str, first: date,
                   last: date) -> dict[date, dict[str, int]]:
    """The stored days from `first` to `last`, each with all its counts."""
    rows = session.execute(select(ActivityDay.day, ActivityDay.trials, ActivityDay.paying,
                                  ActivityDay.new_trials, ActivityDay.new_subscriptions)
                           .where(ActivityDay.partner_id == partner_id,
                                  ActivityDay.day >= first.isoformat(),
                                  ActivityDay.day <= last.isoformat())).all()
    return {date.fromisoformat(d): {"trials": t, "paying": p, "new_trials": nt,
                                    "new_subscriptions": ns} for d, t, p, nt, ns in rows}


def _day(column: Any, session: Session) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone("UTC", column), Date)
    return func.date(column)


def status_deltas(session: Session,
                  partner_id: str | None = None) -> dict[str, dict[str, dict[date, int]]]:
    """Per partner and count, +1 on the day a customer entered a counted status and -1 on the day
    it left: each status lasts until the customer's next change (a window function). The count at
    the end of day D is the sum of the changes up to D."""
    day = _day(SubscriptionState.occurred_at, session)
    spans = (select(Referral.partner_id.label("partner"), SubscriptionState.status.label("status"),
                    day.label("start"),
                    func.lead(day).over(partition_by=SubscriptionState.customer_id,
                                        order_by=(SubscriptionState.occurred_at,
                                                  SubscriptionState.id)).label("stop"))
             .join(Referral, Referral.customer_id == SubscriptionState.customer_id)
             .where(Referral.partner_id == partner_id if partner_id else true()).subquery())
    by_status = {s: name for name, statuses in CLASSES.items() for s in statuses}
    out: dict[str, dict[str, dict[date, int]]] = defaultdict(
        lambda: {name: defaultdict(int) for name in CLASSES})
    for column, sign in ((spans.c.start, 1), (spans.c.stop, -1)):
        for partner, status, when, n in session.execute(
                select(spans.c.partner, spans.c.status, column, func.count())
                .where(column.is_not(None), spans.c.status.in_(list(by_status)))
                .group_by(spans.c.partner, spans.c.status, column)):
            day_of = when if isinstance(when, date) else date.fromisoformat(str(when))
            out[partner][by_status[status]][day_of] += sign * int(n)
    return out


def counts_on(deltas: dict[date, int], days: list[date]) -> list[int]:
    """Running sums of `deltas` at the end of each of `days` (ascending)."""
    changes = sorted(deltas.items())
    counts, running, i = [], 0, 0
    for day in days:
        while i < len(changes) and changes[i][0] <= day:
            running += changes[i][1]
            i += 1
        counts.append(running)
    return counts


def snapshot_activity(hub: Hub, now: datetime) -> dict[str, Any]:
    """`hub tick` job: write each partner's end-of-day counts for the closed days since its last
    snapshot (the last `RECOMPUTED_DAYS` again, for facts that arrived late; `SNAPSHOT_DAYS` the
    first time). Idempotent: a day's rows are replaced, never added to."""
    yesterday = now.date() - timedelta(days=1)
    with hub.transaction() as session:
        last = dict(session.execute(select(ActivityDay.partner_id, func.max(ActivityDay.day))
                                    .group_by(ActivityDay.partner_id)).all())
        written, partners = 0, status_deltas(session)
        oldest = yesterday - timedelta(days=SNAPSHOT_DAYS - 1)
        news = new_per_day(session, oldest, yesterday)
        for partner_id in sorted(set(partners) | set(news)):
            first = oldest
            if partner_id in last:
                first = max(first, date.fromisoformat(last[partner_id])
                            - timedelta(days=RECOMPUTED_DAYS))
            deltas = partners.get(partner_id) or {name: {} for name in CLASSES}
            written += _write_days(session, partner_id, deltas, news.get(partner_id, {}), first,
                                   yesterday)
    return {"partners": len(partners), "days": written}


def _write_days(session: Session, partner_id: str, deltas: dict[str, dict[date, int]],
                news: dict[str, dict[date, int]], first: date, last: date) -> int:
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    if not days:
        return 0
    trials, paying = counts_on(deltas["trials"], days), counts_on(deltas["paying"], days)
    session.execute(delete(ActivityDay).where(ActivityDay.partner_id == partner_id,
                                              ActivityDay.day >= first.isoformat()))
    referred, subscribed = news.get("new_trials", {}), news.get("new_subscriptions", {})
    # An upsert, not a plain insert after the delete: a racing tick's rows are invisible to
    # this transaction's delete until it commits, and a plain insert of the same day then died
    # on the primary key (found by the scale-out test's two racing ticks).
    session.execute(*many_rows(session, ActivityDay.__table__, [
        dict(partner_id=partner_id, day=d.isoformat(), trials=t, paying=p,
             new_trials=referred.get(d, 0), new_subscriptions=subscribed.get(d, 0))
        for d, t, p in zip(days, trials, paying, strict=True)], _replace_day))
    return len(days)


def _replace_day(stmt: Any) -> Any:
    new = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[ActivityDay.partner_id, ActivityDay.day],
        set_=dict(trials=new.trials, paying=new.paying, new_trials=new.new_trials,
                  new_subscriptions=new.new_subscriptions))


def new_per_day(session: Session, first: date, last: date,
                partner_id: str | None = None) -> dict[str, dict[str, dict[date, int]]]:
    """Per partner, the customers referred (`new_trials`) and the referred customers paying for
    the first time (`new_subscriptions`) on each UTC day from `first` to `last`, set-based."""
    start, stop = _midnight(first), _midnight(last + timedelta(days=1))
    mine = Referral.partner_id == partner_id if partner_id else true()
    out: dict[str, dict[str, dict[date, int]]] = defaultdict(lambda: defaultdict(dict))
    referred_day = _day(Referral.attributed_at, session)
    for partner, day, n in session.execute(
            select(Referral.partner_id, referred_day, func.count())
            .where(mine, Referral.attributed_at >= start, Referral.attributed_at < stop)
            .group_by(Referral.partner_id, referred_day)):
        out[partner]["new_trials"][_as_date(day)] = int(n)
    firsts = (select(PaymentRecord.customer_id, func.min(PaymentRecord.occurred_at).label("at"))
              .group_by(PaymentRecord.customer_id).subquery())
    paid_day = _day(firsts.c.at, session)
    for partner, day, n in session.execute(
            select(Referral.partner_id, paid_day, func.count())
            .join(firsts, firsts.c.customer_id == Referral.customer_id)
            .where(mine, firsts.c.at >= start, firsts.c.at < stop)
            .group_by(Referral.partner_id, paid_day)):
        out[partner]["new_subscriptions"][_as_date(day)] = int(n)
    return out


def news_of_today(session: Session, partner_id: str, today: date) -> dict[str, int]:
    """Today's `new_trials` and `new_subscriptions` of one partner, live: only today's rows are
    read (today's referrals by partner and time; today's payments by time, then whether the
    customer paid before)."""
    start = _midnight(today)
    trials = select(func.count()).select_from(Referral).where(
        Referral.partner_id == partner_id, Referral.attributed_at >= start)
    earlier = aliased(PaymentRecord)
    firsts = (select(func.count(func.distinct(PaymentRecord.customer_id)))
              .join(Referral, Referral.customer_id == PaymentRecord.customer_id)
              .where(PaymentRecord.occurred_at >= start, Referral.partner_id == partner_id,
                     ~select(earlier.id).where(earlier.customer_id == PaymentRecord.customer_id,
                                               earlier.occurred_at < start).exists()))
    row = session.execute(select(trials.scalar_subquery(), firsts.scalar_subquery())).one()
    return {"new_trials": int(row[0] or 0), "new_subscriptions": int(row[1] or 0)}


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def rebuild_statuses(session: Session) -> int:
    """Fill `customer_statuses` from the timelines (for data stored before the projection)."""
    rank = case({s: i for i, s in enumerate(TIE_ORDER)}, value=SubscriptionState.status, else_=-1)
    ordered = select(SubscriptionState.customer_id, SubscriptionState.status,
                     SubscriptionState.plan, SubscriptionState.occurred_at,
                     func.row_number().over(partition_by=SubscriptionState.customer_id,
                                            order_by=(SubscriptionState.occurred_at.desc(),
                                                      rank.desc())).label("n")).subquery()
    rows = session.execute(select(ordered.c.customer_id, ordered.c.status, ordered.c.plan,
                                  ordered.c.occurred_at).where(ordered.c.n == 1)).all()
    session.execute(delete(CustomerStatus))

    forget_counts(session)  # what each customer was counted as went with the old rows
    if rows:
        session.execute(insert(CustomerStatus),
                        [dict(customer_id=c, status=s, plan=p, occurred_at=a)
                         for c, s, p, a in rows])
    return len(rows)
