"""A referred customer's past as the rules see it: payments and the subscription timeline."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from .db.models import PaymentRecord, SubscriptionState
from .programs import History, Payment, StatusSpan


def payment_view(row: PaymentRecord, customer_ref: str) -> Payment:
    return Payment(provider=row.provider, ref=row.ref, customer_ref=customer_ref, amount=row.amount,
                   currency=row.currency, occurred_at=row.occurred_at,
                   subscription_ref=row.subscription_ref, plan=row.plan)


def history_for(session: Session, customer_id: int, customer_ref: str) -> History:
    payments = session.scalars(select(PaymentRecord).where(PaymentRecord.customer_id == customer_id)
                               .order_by(PaymentRecord.occurred_at, PaymentRecord.ref)).all()
    states = session.scalars(select(SubscriptionState)
                             .where(SubscriptionState.customer_id == customer_id)
                             .order_by(SubscriptionState.occurred_at, SubscriptionState.id)).all()
    return build_history(tuple(payment_view(p, customer_ref) for p in payments),
                         [(s.status, s.plan, s.occurred_at) for s in states])


def build_history(payments: tuple[Payment, ...],
                  states: Sequence[tuple[str, str | None, datetime]]) -> History:
    """A History from a customer's payments (oldest first) and status changes (in time order,
    as (status, plan, at)); shared by live processing and the what-if simulation."""
    spans = status_spans([(status, at) for status, _, at in states])
    plan = next((plan for _, plan, _ in reversed(states) if plan), None)
    if plan is None:
        plan = next((p.plan for p in reversed(payments) if p.plan), None)
    return History(payments=payments, statuses=spans, plan=plan)


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
