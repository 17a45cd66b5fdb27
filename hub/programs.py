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
    deliveries find the line already booked. `inputs` and `sentence` explain the derivation: they
    are stored with the line and shown by ``GET /api/v1/commissions/{id}/explain`` (the sentence
    next to each transaction, the inputs as the whole derivation).

    `sentence` is one line a partner understands, with the numbers in it, e.g.
    ``"25% of $49.00 paid on 2026-03-01 (in_1, payment 3 of the first 12 months) = $12.25"``.

    `inputs` is JSON (str, int, bool, lists, dicts; amounts in minor units, rates as decimal
    strings). Use these names where they apply, so explanations read alike across programs
    (`hub.explain` describes each of them in words):

    - ``base``: the amount the rate applied to (minor units, the program currency)
    - ``rate``: the rate, a decimal string (``"0.25"``)
    - ``payment``: the provider's payment reference (invoice id, sale id)
    - ``payment_number``: 1 for the customer's first payment, 2 for the second, ...
    - ``window``: where the payment falls in a limited earning period, made with
      `window_input` (``{"payment": 3, "months": 12, "start": "2026-01-01", "end": ...}``)
    - ``tier``: the tier that set the amount, made with `tier_input`
      (``{"label": "25 or more active referrals", "count": 25, "threshold": 25}``)
    - ``plan``: the customer's plan that set the amount
    - ``bounty``: a fixed amount (minor units)
    - ``install``, ``site``, ``product``: the installation that earned
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

    automatic: a PayPal payout is created when the payable balance reaches `minimum`; a partner
        without a PayPal address is listed for manual payment every `every_months` months
        instead (every 3 months when 0).
    request: the partner asks once payable >= `minimum`, with one of `methods` (the first by
        default; "paypal" is sent through PayPal, any other name is paid by hand);
        `one_pending` refuses a second request while one is open.
    monthly: everything earned through month M is paid at the end of month M+1 (PayPal when the
        partner has an address, else listed for manual payment), if it reaches `minimum`.
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


def window_input(number: int, months: int, start: datetime, end: datetime) -> dict[str, Any]:
    """`Draft.inputs["window"]`: payment `number` of a window of `months` from `start`."""
    return {"payment": number, "months": months, "start": start.isoformat(),
            "end": end.isoformat()}


def tier_input(label: str, count: int, threshold: int | None = None) -> dict[str, Any]:
    """`Draft.inputs["tier"]`: the tier `label` chosen because the count was `count` (against
    `threshold`, when the tier has one), e.g. 25 active referrals that month."""
    tier: dict[str, Any] = {"label": label, "count": count}
    if threshold is not None:
        tier["threshold"] = threshold
    return tier
