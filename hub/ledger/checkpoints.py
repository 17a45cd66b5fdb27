"""Checkpoints of the ledger, so a partner's balances and commission per day are read without
summing the partner's whole history.

`hub tick` (job `checkpoint`) adds the entries after the watermark to `balance_checkpoints` and
the lines they booked to `commission_days`, then moves the watermark past them, all in one
transaction. A read is the checkpoint plus the entries after the watermark, in one statement
(one snapshot), so it equals the ledger's sums exactly whenever tick last ran, or if it never
did; writers do nothing extra, the bulk paths included.

Why a watermark on entry ids is safe: an id is taken from a sequence inside the writing
transaction, so a smaller id could still commit after a larger one is visible. The tick takes
its watermark while holding a SHARE lock on `ledger_entries` (which waits for every open writer
and lets none start), so every id up to it belongs to a finished transaction and every later id
is larger. On SQLite writers are serialised and a writer numbers rows after every committed one.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select, text, union_all, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from hub.db.models import (
    BalanceCheckpoint,
    Commission,
    CommissionDay,
    LedgerEntry,
    LedgerWatermark,
    Partner,
)
from hub.db.upsert import insert_ignore
from hub.runtime import Hub

# How long the tick waits for open writers before leaving the watermark for the next tick.
LOCK_TIMEOUT = "2s"


def day_text(column: Any, session: Session) -> Any:
    """The UTC day of a timestamp as 'YYYY-MM-DD' text, the key of `commission_days`."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.date(column)


def _watermark() -> Any:
    return func.coalesce(select(LedgerWatermark.through_id).where(LedgerWatermark.id == 1)
                         .scalar_subquery(), 0)


def balance_sums(session: Session, partner_id: str) -> list[tuple[str, str, int]]:
    """(currency, state, sum) of the partner's entries: checkpoint plus the entries after it."""
    parts = union_all(
        select(BalanceCheckpoint.currency, BalanceCheckpoint.state, BalanceCheckpoint.amount)
        .where(BalanceCheckpoint.partner_id == partner_id),
        select(LedgerEntry.currency, LedgerEntry.state, LedgerEntry.amount)
        .where(LedgerEntry.partner_id == partner_id, LedgerEntry.id > _watermark())).subquery()
    rows = session.execute(select(parts.c.currency, parts.c.state, func.sum(parts.c.amount))
                           .group_by(parts.c.currency, parts.c.state)).all()
    return [(currency, state, int(total)) for currency, state, total in rows]


def program_balance_sums(session: Session) -> list[tuple[str, str, str, int]]:
    """(program, currency, state, sum) over every partner: the checkpoints plus the entries
    after the watermark, as `balance_sums` reads one partner's (the operator's home page)."""
    parts = union_all(
        select(BalanceCheckpoint.partner_id, BalanceCheckpoint.currency, BalanceCheckpoint.state,
               BalanceCheckpoint.amount),
        select(LedgerEntry.partner_id, LedgerEntry.currency, LedgerEntry.state,
               LedgerEntry.amount).where(LedgerEntry.id > _watermark())).subquery()
    rows = session.execute(
        select(Partner.program, parts.c.currency, parts.c.state, func.sum(parts.c.amount))
        .join(Partner, Partner.id == parts.c.partner_id)
        .group_by(Partner.program, parts.c.currency, parts.c.state)).all()
    return [(program, currency, state, int(total)) for program, currency, state, total in rows]


def earned_since(session: Session, since: date) -> Any:
    """A subquery of (partner_id, currency, amount): every partner's commission earned on or
    after the UTC day `since` (after reversals), read as the checkpointed days plus the lines
    booked after the watermark, as `daily_commission` reads one partner's."""
    day = day_text(Commission.earned_at, session)
    recent = select(LedgerEntry.line_id).where(LedgerEntry.id > _watermark(),
                                               LedgerEntry.line_id.is_not(None))
    parts = union_all(
        select(CommissionDay.partner_id, CommissionDay.currency, CommissionDay.amount)
        .where(CommissionDay.day >= since.isoformat()),
        select(Commission.partner_id, Commission.currency, Commission.amount)
        .where(Commission.id.in_(recent), day >= since.isoformat())).subquery()
    return (select(parts.c.partner_id, parts.c.currency,
                   func.sum(parts.c.amount).label("amount"))
            .group_by(parts.c.partner_id, parts.c.currency).subquery())


def daily_commission(session: Session, partner_id: str, currency: str, since: date,
                     until: date) -> list[tuple[date, int]]:
    """The partner's commission per UTC day of `earned_at` from `since` to `until` (inclusive):
    checkpointed days plus the lines booked after the watermark."""
    day = day_text(Commission.earned_at, session)
    recent = (select(LedgerEntry.line_id).where(
        LedgerEntry.partner_id == partner_id, LedgerEntry.id > _watermark(),
        LedgerEntry.line_id.is_not(None)))
    if session.get_bind().dialect.name == "postgresql":
        # `= ANY(ARRAY(...))`: the few recent lines are looked up by id; as a semi-join the
        # planner, not knowing the watermark, may hash the partner's every line instead.
        in_recent = Commission.id == func.any(func.array(recent.scalar_subquery()))
        prefer_index_probes(session)
    else:
        in_recent = Commission.id.in_(recent)
    parts = union_all(
        select(CommissionDay.day.label("day"), CommissionDay.amount.label("amount"))
        .where(CommissionDay.partner_id == partner_id, CommissionDay.currency == currency,
               CommissionDay.day >= since.isoformat(), CommissionDay.day <= until.isoformat()),
        select(day.label("day"), Commission.amount.label("amount"))
        .where(Commission.partner_id == partner_id, Commission.currency == currency,
               in_recent)).subquery()
    rows = session.execute(select(parts.c.day, func.sum(parts.c.amount))
                           .where(parts.c.day >= since.isoformat(),
                                  parts.c.day <= until.isoformat())
                           .group_by(parts.c.day)).all()
    return [(date.fromisoformat(str(d)), int(total)) for d, total in rows if total]


def prefer_index_probes(session: Session) -> None:
    """For the rest of this transaction, no parallel workers on PostgreSQL: the dashboard's
    reads are a few hundred index probes, and launching workers for them costs more (tens of
    ms on a busy host) than it saves, whatever the planner estimates."""
    marker = id(session.get_transaction())  # a reused id only costs the SET once more: harmless
    if session.get_bind().dialect.name == "postgresql" and session.info.get(_PROBES) != marker:
        session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
        session.info[_PROBES] = marker


_PROBES = "ledger_checkpoints.index_probes"


def checkpoint_ledger(hub: Hub, now: datetime) -> dict[str, Any]:
    """`hub tick` job: fold the entries since the watermark into the checkpoints. Idempotent;
    two ticks racing fold each entry once (the watermark row is locked and moved conditionally)."""
    through = settled_entry_id(hub)
    if through is None:
        return {"entries": 0, "skipped": "writers busy"}
    try:
        with hub.transaction() as session:
            insert_ignore(session, LedgerWatermark, {"id": 1, "through_id": 0})
            previous = int(session.scalar(select(LedgerWatermark.through_id)
                                          .where(LedgerWatermark.id == 1).with_for_update()) or 0)
            if through <= previous:
                return {"entries": 0}
            entries = fold_entries(session, previous, through)
            moved = cast(CursorResult[Any], session.execute(update(LedgerWatermark).where(
                LedgerWatermark.id == 1, LedgerWatermark.through_id == previous)
                .values(through_id=through))).rowcount
            if moved != 1:
                raise _Raced()
    except _Raced:  # another tick folded this window first: ours rolled back, nothing twice
        return {"entries": 0}
    return {"entries": entries, "through": through}


class _Raced(Exception):
    pass


def settled_entry_id(hub: Hub) -> int | None:
    """The largest entry id such that no entry with a smaller or equal id can still commit;
    None when open writers did not finish within `LOCK_TIMEOUT`."""
    with hub.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            try:
                with conn.begin():
                    conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
                    conn.execute(text("LOCK TABLE ledger_entries IN SHARE MODE"))
                    return int(conn.scalar(select(func.coalesce(func.max(LedgerEntry.id), 0))) or 0)
            except OperationalError:
                return None
        with conn.begin():
            return int(conn.scalar(select(func.coalesce(func.max(LedgerEntry.id), 0))) or 0)


def fold_entries(session: Session, after: int, through: int) -> int:
    """Add the entries with `after < id <= through` to the checkpoints; returns how many."""
    window = (LedgerEntry.id > after, LedgerEntry.id <= through)
    sums = session.execute(
        select(LedgerEntry.partner_id, LedgerEntry.currency, LedgerEntry.state,
               func.sum(LedgerEntry.amount), func.count())
        .where(*window).group_by(LedgerEntry.partner_id, LedgerEntry.currency,
                                 LedgerEntry.state)).all()
    _add(session, BalanceCheckpoint, ("partner_id", "currency", "state"),
         [dict(partner_id=p, currency=c, state=s, amount=int(a)) for p, c, s, a, _ in sums])
    # Each line is booked by exactly one transfer (ledger.post names it as `line_id`), and a
    # transfer's entries share one transaction, so a line falls in exactly one window.
    day = day_text(Commission.earned_at, session)
    lines = select(LedgerEntry.line_id).where(*window, LedgerEntry.line_id.is_not(None))
    days = session.execute(
        select(Commission.partner_id, Commission.currency, day, func.sum(Commission.amount))
        .where(Commission.id.in_(lines))
        .group_by(Commission.partner_id, Commission.currency, day)).all()
    _add(session, CommissionDay, ("partner_id", "currency", "day"),
         [dict(partner_id=p, currency=c, day=str(d), amount=int(a)) for p, c, d, a in days])
    return sum(int(n) for *_, n in sums)


def _add(session: Session, model: type[Any], keys: tuple[str, ...],
         rows: list[dict[str, Any]]) -> None:
    """Upsert rows, adding `amount` to an existing row's."""
    if not rows:
        return
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = module.insert(model.__table__)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys), set_={"amount": model.__table__.c.amount + stmt.excluded.amount})
    session.execute(stmt, rows)


def rebuild_checkpoints(hub: Hub) -> dict[str, Any]:
    """Start the checkpoints over from the ledger (after restoring a backup, or to check them)."""
    with hub.transaction() as session:
        session.execute(select(LedgerWatermark.id).with_for_update())  # no tick folds meanwhile
        for model in (BalanceCheckpoint, CommissionDay, LedgerWatermark):
            session.execute(delete(model))
    return checkpoint_ledger(hub, datetime.now())
