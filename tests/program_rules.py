"""Calling program rules the way the core does, on plain values: for the table-driven tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hub.config import config_from_dict
from hub.programs import History, Payment, Program, Referral, StatusSpan
from hub.registry import load_registry
from hub.runtime import build_programs

REGISTRY = load_registry()


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def program(plugin: str, **settings: Any) -> Program:
    """The program an operator gets from `[programs.<plugin>] plugin = ...` plus `settings`."""
    config = config_from_dict({"programs": {plugin: {"plugin": plugin, **settings}}})
    return build_programs(config, REGISTRY)[plugin]


def call(prog: Program, hook: str, **kwargs: Any) -> Any:
    return REGISTRY.rules(prog.plugin, hook)(program=prog, **kwargs)


def drafts(prog: Program, hook: str, **kwargs: Any) -> list[Any]:
    return [d for answer in call(prog, hook, **kwargs) or [] for d in answer or []]


def payment(ref: str, at: datetime, amount: int, currency: str = "USD", plan: str | None = None,
            customer: str = "cus_1") -> Payment:
    return Payment(provider="stripe", ref=ref, customer_ref=customer, amount=amount,
                   currency=currency, occurred_at=at, subscription_ref="sub_1", plan=plan)


def referral(kind: str = "partner", customer: str = "cus_1") -> Referral:
    return Referral(partner_id="prt_1", partner_kind=kind, customer_ref=customer, source="code",
                    attributed_at=utc(2020, 1, 1))


def monthly(first: datetime, count: int, amount: int, currency: str = "USD") -> list[Payment]:
    """`count` monthly payments on the first one's day of month."""
    from hub.programs import add_months

    return [payment(f"in_{n}", add_months(first, n - 1), amount, currency)
            for n in range(1, count + 1)]


def spans(*changes: tuple[str, datetime]) -> tuple[StatusSpan, ...]:
    from hub.ledger.history import status_spans

    return status_spans(list(changes))


def history(payments: list[Payment] = (), statuses: tuple[StatusSpan, ...] = (),  # type: ignore[assignment]
            plans: tuple[tuple[datetime, str], ...] = ()) -> History:
    return History(payments=tuple(sorted(payments, key=lambda p: (p.occurred_at, p.ref))),
                   statuses=statuses, plans=plans, plan=plans[-1][1] if plans else None)
