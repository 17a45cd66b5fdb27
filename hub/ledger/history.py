"""A referred customer's past as the rules see it: payments and the subscription timeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from hub.db.models import PaymentRecord, Referral, SubscriptionState
from hub.programs import History, Payment, StatusSpan

# Statuses recorded at the same instant are ordered by this rank, not by arrival, so a replay in
# any order builds the same timeline (the later stage of a subscription's life wins a tie).
_TIE_RANK = {"trial": 0, "active": 1, "past_due": 2, "cancelled": 3}


def payment_view(row: Any, customer_ref: str) -> Payment:
    return Payment(provider=row.provider, ref=row.ref, customer_ref=customer_ref, amount=row.amount,
                   currency=row.currency, occurred_at=row.occurred_at,
                   subscription_ref=row.subscription_ref, plan=row.plan)


def history_for(session: Session, customer_id: int, customer_ref: str) -> History:
    payments = session.scalars(select(PaymentRecord).where(PaymentRecord.customer_id == customer_id)
                               .order_by(PaymentRecord.occurred_at, PaymentRecord.ref)).all()
    states = session.scalars(select(SubscriptionState)
                             .where(SubscriptionState.customer_id == customer_id)
                             .order_by(SubscriptionState.occurred_at, SubscriptionState.id)).all()
    return build_history(list(payments), list(states), customer_ref)


def histories_of_program(session: Session | Connection, program: str,
                         refs: dict[int, str]) -> dict[int, History]:
    """The history of every customer referred in `program`, in two queries (for `hub tick`).
    `refs` maps customer id to customer ref."""
    # Plain rows, not ORM objects: this runs on every tick for every referral of the program.
    referred = select(Referral.customer_id).where(Referral.program == program)
    payments = session.execute(select(*PaymentRecord.__table__.c)
                               .where(PaymentRecord.customer_id.in_(referred))
                               .order_by(PaymentRecord.occurred_at, PaymentRecord.ref)).all()
    states = session.execute(select(*SubscriptionState.__table__.c)
                             .where(SubscriptionState.customer_id.in_(referred))
                             .order_by(SubscriptionState.occurred_at, SubscriptionState.id)).all()
    by_customer: dict[int, tuple[list[Any], list[Any]]] = {cid: ([], []) for cid in refs}
    for p in payments:
        by_customer.setdefault(p.customer_id, ([], []))[0].append(p)
    for s in states:
        by_customer.setdefault(s.customer_id, ([], []))[1].append(s)
    return {cid: build_history(pays, sts, refs.get(cid, ""))
            for cid, (pays, sts) in by_customer.items()}


def build_history(payments: list[Any], states: list[Any], customer_ref: str) -> History:
    """A History from a customer's payment rows (in time order) and status rows."""
    return history_of([payment_view(p, customer_ref) for p in payments], timeline(states))


@dataclass(frozen=True)
class Timeline:
    """What a customer's status rows say: its status spans, latest plan and plan changes."""

    spans: tuple[StatusSpan, ...]
    plan: str | None
    plans: tuple[tuple[datetime, str], ...]


def timeline(states: list[Any]) -> Timeline:
    states = sorted(states, key=lambda s: (s.occurred_at, _TIE_RANK.get(s.status, 9), s.plan or ""))
    return Timeline(spans=status_spans([(s.status, s.occurred_at) for s in states]),
                    plan=next((s.plan for s in reversed(states) if s.plan), None),
                    plans=plan_changes([(s.occurred_at, s.plan) for s in states]))


def history_of(payments: list[Payment], states: Timeline) -> History:
    """A History from payment views (in time order) and the status rows' `timeline` (for a
    caller that keeps both between a customer's payments: a batch or a replay)."""
    plan = states.plan or next((p.plan for p in reversed(payments) if p.plan), None)
    return History(payments=tuple(payments), statuses=states.spans, plan=plan,
                   plans=states.plans)


def plan_changes(rows: list[tuple[datetime, str | None]]) -> tuple[tuple[datetime, str], ...]:
    """(since, plan) for each change of plan in a time-ordered list; rows without a plan keep
    the plan in force."""
    changes: list[tuple[datetime, str]] = []
    for at, plan in rows:
        if plan and (not changes or changes[-1][1] != plan):
            changes.append((at, plan))
    return tuple(changes)


def status_spans(changes: list[tuple[str, object]]) -> tuple[StatusSpan, ...]:
    """Collapse a time-ordered list of (status, at) into spans; repeats of a status merge."""
    spans: list[StatusSpan] = []
    for status, at in changes:
        if spans and spans[-1].status == status:
            continue
        if spans:
            last = spans[-1]
            spans[-1] = StatusSpan(last.status, last.start, at)  # type: ignore[arg-type]
        spans.append(StatusSpan(status, at, None))  # type: ignore[arg-type]
    return tuple(spans)
