"""What a program plugin sees and returns.

Program plugins are pure: the core hands them plain, frozen values (the program and its settings,
the referral, the payment or install, the customer's history) and they return `Draft` commission
lines. They never touch the database, the network or the clock.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

PayoutMode = Literal["automatic", "request", "monthly", "manual"]


@dataclass(frozen=True)
class ProgramSettings:
    """Settings every program has; plugins subclass this with their own typed keys."""

    plugin: str
    currency: str = "USD"
    hold_days: int = 30
    cookie_days: int = 90
    self_signup: bool = True
    locale: str = "en"  # how the portal writes amounts: "en" $1,234.56, "de" 1.234,56 €, ...

    def __post_init__(self) -> None:
        if len(self.currency) != 3 or not self.currency.isalpha():
            raise ValueError(f"currency must be an ISO 4217 code, not {self.currency!r}")
        object.__setattr__(self, "currency", self.currency.upper())
        if self.hold_days < 0 or self.cookie_days < 0:
            raise ValueError("hold_days and cookie_days cannot be negative")


@dataclass(frozen=True)
class ProgramKind:
    """A program variant a plugin offers (`crazycall`, `odoopbx`, ...)."""

    name: str
    settings: type[ProgramSettings]
    kinds: tuple[str, ...] = ("partner",)
    description: str = ""


@dataclass(frozen=True)
class Program:
    """An operator's enabled program: its table name, the plugin that runs it, its settings."""

    name: str
    plugin: str
    settings: Any
    kinds: tuple[str, ...] = ("partner",)

    @property
    def currency(self) -> str:
        return str(self.settings.currency)

    @property
    def settings_hash(self) -> str:
        return settings_hash(self.settings)


def settings_hash(settings: Any) -> str:
    """A short stable hash of a settings object, stored with every commission it produced."""
    data = json.dumps(dataclasses.asdict(settings), sort_keys=True, default=str)
    return hashlib.sha256(data.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Referral:
    """A customer attributed to a partner in a program."""

    partner_id: str
    partner_kind: str
    customer_ref: str
    source: str
    attributed_at: datetime


@dataclass(frozen=True)
class Payment:
    """A successful payment by a referred customer, in the provider's own terms."""

    provider: str
    ref: str
    customer_ref: str
    amount: int
    currency: str
    occurred_at: datetime
    subscription_ref: str | None = None
    plan: str | None = None
    description: str = "payment"


@dataclass(frozen=True)
class Install:
    """A module or widget installation reported by an installer."""

    install_id: str
    product: str
    site: str | None
    customer_ref: str | None
    occurred_at: datetime


@dataclass(frozen=True)
class StatusSpan:
    """The referred account was in `status` from `start` (inclusive) to `end` (None: still)."""

    status: str
    start: datetime
    end: datetime | None


@dataclass(frozen=True)
class History:
    """What the rules may need of a referred customer's past, as of the fact being handled.

    `payments` holds the customer's known successful payments (this one included), oldest first.
    `statuses` is the subscription status timeline (trial / active / past_due / cancelled).
    """

    payments: tuple[Payment, ...] = ()
    statuses: tuple[StatusSpan, ...] = ()
    plan: str | None = None

    @property
    def first_payment_at(self) -> datetime | None:
        return self.payments[0].occurred_at if self.payments else None

    def payment_number(self, payment: Payment) -> int:
        """1 for the first payment, 2 for the second, by provider time."""
        return 1 + sum(1 for p in self.payments if (p.occurred_at, p.ref) < (payment.occurred_at, payment.ref))


@dataclass(frozen=True)
class TickContext:
    """What a time tick knows beyond the referral: the moment and the partner's counts."""

    now: datetime
    active_referrals: int = 0


@dataclass(frozen=True)
class Draft:
    """A commission line a rule wants: the core makes it idempotent, holds it, and books it.

    `key` must be stable for the same cause (e.g. ``"pay:in_123"``) so that replays and duplicate
    deliveries find the line already booked. `inputs` and `sentence` explain the derivation.
    """

    key: str
    amount: int
    currency: str
    earned_at: datetime
    rule: str
    sentence: str
    inputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PayoutPolicy:
    """How a program pays a partner.

    automatic: a payout is created when the payable balance reaches `minimum` (needs PayPal).
    request: the partner asks once payable >= `minimum`; `one_pending` refuses a second request.
    monthly: everything earned through month M is paid at the end of month M+1.
    manual: listed for the operator every `every_months` months.
    """

    mode: PayoutMode
    minimum: int = 0
    one_pending: bool = False
    methods: tuple[str, ...] = ("paypal",)
    every_months: int = 0


def rate_sentence(rate: Decimal, amount: int, currency: str, when: datetime, what: str) -> str:
    from .money import format_money, format_rate, percent_of

    return (f"{format_rate(rate)} of {format_money(amount, currency)} paid on {when.date().isoformat()}"
            f" ({what}) = {format_money(percent_of(amount, rate), currency)}")
