"""Normalised facts: what connectors turn provider payloads into, and all the core understands.

Each fact keeps the provider's own ids and business time (`occurred_at`); nothing
provider-specific goes past this point.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub.money import known_currency, minor_units

# The provider a product's report (a signup, an install, a manual assignment) is about when it
# names none: the default the HTTP contract gives its `provider` field.
DEFAULT_PROVIDER = "stripe"


@dataclass(frozen=True)
class CustomerSeen:
    provider: str
    customer_ref: str
    occurred_at: datetime
    email: str | None = None
    partner_code: str | None = None
    install_id: str | None = None


@dataclass(frozen=True)
class AttributionClaimed:
    """A provider object named a partner or referral code for a customer (checkout, coupon)."""

    provider: str
    customer_ref: str
    code: str
    source: str
    occurred_at: datetime
    email: str | None = None


@dataclass(frozen=True)
class SubscriptionChanged:
    provider: str
    subscription_ref: str
    customer_ref: str
    status: str  # trial | active | past_due | cancelled
    occurred_at: datetime
    plan: str | None = None
    partner_code: str | None = None
    install_id: str | None = None
    ends_at: datetime | None = None  # end of the current trial or paid period, or of the account


@dataclass(frozen=True)
class PaymentSucceeded:
    provider: str
    payment_ref: str
    customer_ref: str
    amount: int
    currency: str
    occurred_at: datetime
    charge_ref: str | None = None
    intent_ref: str | None = None
    subscription_ref: str | None = None
    plan: str | None = None
    partner_code: str | None = None
    install_id: str | None = None
    email: str | None = None
    gross_amount: int | None = None  # when tax is stated apart; defaults to amount


@dataclass(frozen=True)
class PaymentAdjusted:
    """A refund (`refund_total`: cumulative; `refund`: one refund) or a dispute of a payment.

    Any of the three references may identify the payment; at least one must be set.
    """

    provider: str
    kind: str  # refund_total | refund | dispute
    key: str
    amount: int
    occurred_at: datetime
    payment_ref: str | None = None
    charge_ref: str | None = None
    intent_ref: str | None = None


@dataclass(frozen=True)
class PaymentFailed:
    """An invoice went unpaid: the account is past due until a later payment."""

    provider: str
    customer_ref: str
    occurred_at: datetime
    subscription_ref: str | None = None


@dataclass(frozen=True)
class InstallReported:
    """An installer reported a module or widget installation, with the partner code it carries."""

    install_id: str
    product: str
    occurred_at: datetime
    partner_code: str | None = None
    site: str | None = None
    customer_ref: str | None = None
    customer_provider: str = DEFAULT_PROVIDER


@dataclass(frozen=True)
class SignupReported:
    """The product created an account, with the click id or referral code it was sent with."""

    provider: str
    customer_ref: str
    occurred_at: datetime
    email: str | None = None
    click_id: str | None = None
    code: str | None = None


@dataclass(frozen=True)
class CouponApplied:
    """A provider object carried coupon or promotion codes; one mapped to a partner attributes."""

    provider: str
    customer_ref: str
    codes: tuple[str, ...]
    occurred_at: datetime
    email: str | None = None


@dataclass(frozen=True)
class PayoutStatusChanged:
    """A payment provider's word on a payout the hub sent: `status` in the hub's terms (sent,
    paid, failed, returned, unclaimed) or None when it only names ids; `check` asks the hub to
    poll the provider for the item's status (e.g. after a batch-level event)."""

    provider: str
    occurred_at: datetime
    status: str | None = None
    sender_id: str | None = None  # our sender_batch_id or sender_item_id
    batch_id: str | None = None
    item_id: str | None = None
    provider_status: str | None = None
    reason: str | None = None
    check: bool = False


Fact = (CustomerSeen | AttributionClaimed | SubscriptionChanged | PaymentSucceeded
        | PaymentAdjusted | PaymentFailed | InstallReported | SignupReported | CouponApplied
        | PayoutStatusChanged)


def well_typed(facts: list[Any]) -> list[Any]:
    """The facts, after checking each field holds its declared type (TypeError naming it if
    not) and each amount and currency is one the hub can book (ValueError). Connectors read
    untrusted payloads: a list where an id belongs, a string or float amount, a negative tax, a
    currency outside ISO 4217 must stop at the door (a 400, nothing stored) rather than reach the
    database or the rules. Every connector's `prepare` passes its facts through here."""
    for fact in facts:
        for name, allowed in _checks(type(fact)):  # type: ignore[arg-type]  # classes hash
            value = getattr(fact, name)
            if value is not None and not isinstance(value, allowed):
                raise TypeError(f"{type(fact).__name__}.{name} is a {type(value).__name__}")
            if allowed == (int,) and isinstance(value, bool):
                raise TypeError(f"{type(fact).__name__}.{name} is a bool")
        _check_money(fact)
    return facts


def _check_money(fact: Any) -> None:
    """Amounts in `0..MAX_MINOR`, a payment's net at most its gross (the tax stated apart is
    within 0..gross), a known ISO 4217 currency."""
    where = type(fact).__name__
    if isinstance(fact, PaymentSucceeded | PaymentAdjusted):
        minor_units(fact.amount, f"{where}.amount")
    if isinstance(fact, PaymentSucceeded):
        if fact.gross_amount is not None:
            minor_units(fact.gross_amount, f"{where}.gross_amount")
            if fact.amount > fact.gross_amount:
                raise ValueError(f"{where}: the tax is negative (net above gross)")
        if not known_currency(fact.currency):
            raise ValueError(f"{where}.currency is not an ISO 4217 code the hub knows")


@functools.cache
def _checks(cls: type) -> tuple[tuple[str, tuple[type, ...]], ...]:
    """(field, classes its value may be) for each checkable field of a fact class."""
    hints = typing.get_type_hints(cls)
    checks = ((f.name, _runtime_types(hints.get(f.name, Any))) for f in dataclasses.fields(cls))
    return tuple((name, allowed) for name, allowed in checks if allowed)


def _runtime_types(hint: Any) -> tuple[type, ...]:
    """The classes isinstance() can check for a hint (empty: anything goes)."""
    if hint is Any:
        return ()
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        parts = [_runtime_types(arg) for arg in typing.get_args(hint) if arg is not type(None)]
        return () if any(p == () for p in parts) else tuple(t for p in parts for t in p)
    if origin is not None:
        return (origin,) if isinstance(origin, type) else ()
    return (hint,) if isinstance(hint, type) else ()
