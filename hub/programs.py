"""What a program plugin sees and returns.

Program plugins are pure: the core hands them plain, frozen values (the program and its settings,
the referral, the payment or install, the customer's history) and they return `Draft` commission
lines. They never touch the database, the network or the clock.
"""

from __future__ import annotations

import calendar
import dataclasses
import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from hub.attribution.emails import EMAIL_RE
from hub.money import format_money, format_rate, percent_of

PayoutMode = Literal["automatic", "request", "monthly", "manual"]

# A referred account is "active" (in good standing) unless it is cancelled or has an unpaid
# invoice: trials count, as the programs define active as "not cancelled, in good standing".
GOOD_STANDING = frozenset({"trial", "active"})
# Settings that change no commission and were added after lines were booked: left out of the
# settings hash while they hold their default, so adding them does not look like a change of
# the settings every earlier line was computed with.
UNHASHED_DEFAULT = {"unhashed_default": True}
# Keys that only say how to reach the program's people: not rules, never in the settings hash.
NOT_A_RULE = {"not_a_rule": True}
CONTACT_KEYS = ("contact_email", "support_email", "support_url")
_URL = re.compile(r"^https?://[^/\s]+\.[^/\s]+(/\S*)?$")


@dataclass(frozen=True)
class ProgramSettings:
    """Settings every program has; plugins subclass this with their own typed keys."""

    plugin: str
    currency: str = "USD"
    hold_days: int = 30
    cookie_days: int = 90
    self_signup: bool = True
    locale: str = "en"  # how the portal writes amounts: "en" $1,234.56, "de" 1.234,56 €, ...
    # The trial lengths a partner's link may offer (`?trial_days=`); the first is the default.
    trial_days: tuple[int, ...] = (14, 30)
    # How partners reach the program (portal footer and /portal/help; "" = not given): the
    # program manager's address, the support address and page (also answered by the support API).
    contact_email: str = field(default="", metadata=NOT_A_RULE)
    support_email: str = field(default="", metadata=NOT_A_RULE)
    support_url: str = field(default="", metadata=NOT_A_RULE)
    # The partner agreement: its text (shown in the portal) and/or a URL to read it at, and its
    # version; a partner who accepted another version is asked again. Setting a text or URL makes
    # the program's partners accept it, as the plugin's `link_requirements` may.
    agreement_text: str = field(default="", metadata=UNHASHED_DEFAULT)
    agreement_url: str = field(default="", metadata=UNHASHED_DEFAULT)
    agreement_version: str = field(default="", metadata=UNHASHED_DEFAULT)
    # Where a link without a destination (and the partner's default link) lands; empty: the
    # `[server] default_landing`.
    default_landing: str = field(default="", metadata=UNHASHED_DEFAULT)

    def __post_init__(self) -> None:
        for key in CONTACT_KEYS:
            value, shape = getattr(self, key), _URL if key.endswith("url") else EMAIL_RE
            if value and not shape.match(value):
                kind = "an http(s):// URL" if shape is _URL else "an e-mail address"
                raise ValueError(f"{key} must be {kind}, not {value!r}")
        if len(self.currency) != 3 or not self.currency.isalpha():
            raise ValueError(f"currency must be an ISO 4217 code, not {self.currency!r}")
        object.__setattr__(self, "currency", self.currency.upper())
        if self.hold_days < 0 or self.cookie_days < 0:
            raise ValueError("hold_days and cookie_days cannot be negative")
        if not self.trial_days or any(d < 0 for d in self.trial_days):
            raise ValueError("trial_days must list at least one length, none negative")
        for name in ("agreement_url", "default_landing"):
            value = getattr(self, name)
            if value and not value.startswith(("https://", "http://")):
                raise ValueError(f"{name} must be an http(s) URL, not {value!r}")
        if len(self.agreement_version) > 64:
            raise ValueError("agreement_version is at most 64 characters")


@dataclass(frozen=True)
class ProgramKind:
    """A program variant a plugin offers (`crazycall`, `odoopbx`, ...)."""

    name: str
    settings: type[ProgramSettings]
    kinds: tuple[str, ...] = ("partner",)
    description: str = ""


@dataclass(frozen=True)
class KindProfile:
    """What a kind of partner may see and is offered, for the portal and public pages.

    sees_customer_names: the portal shows referred customers' names and emails (else masked).
    listed_in_directory: the partner appears in the program's public partner directory.
    receives_support: customer support requests of its customers are routed to the partner.
    """

    sees_customer_names: bool = True
    listed_in_directory: bool = False
    receives_support: bool = False


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

    @functools.cached_property
    def settings_hash(self) -> str:
        # Settings are fixed for the life of the process; every booked line asks for this.
        return settings_hash(self.settings)


def settings_hash(settings: Any) -> str:
    """A short stable hash of a settings object, stored with every commission it produced."""
    values = dataclasses.asdict(settings)
    for f in dataclasses.fields(settings):
        if f.metadata.get("not_a_rule") or (
                f.metadata.get("unhashed_default") and values.get(f.name) == f.default):
            del values[f.name]
    data = json.dumps(values, sort_keys=True, default=str)
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
    plans: tuple[tuple[datetime, str], ...] = ()  # (since, plan), oldest first

    @property
    def first_payment_at(self) -> datetime | None:
        return self.payments[0].occurred_at if self.payments else None

    def plan_at(self, when: datetime) -> str | None:
        """The plan the account was on at `when` (the latest change at or before it); when no
        plan was known by then, the first one known later (the events may have named it late)."""
        current = self.plans[0][1] if self.plans else self.plan
        for since, plan in self.plans:
            if since > when:
                break
            current = plan
        return current

    def good_standing_reached(self, duration: timedelta) -> datetime | None:
        """The moment the account's total time in good standing first reached `duration`
        (counting every trial/active span, not only an unbroken one); None if it never does."""
        return good_standing_reached(self.statuses, duration)

    def payment_number(self, payment: Payment) -> int:
        """1 for the first payment, 2 for the second, by provider time."""
        return 1 + sum(1 for p in self.payments
                       if (p.occurred_at, p.ref) < (payment.occurred_at, payment.ref))


@dataclass(frozen=True)
class TickContext:
    """What a time tick knows beyond the referral: the moment and the partner's counts.

    `active_referrals` is the partner's number of referral accounts in good standing at some
    moment of the calendar month of `now`; `active_referrals_in(when)` gives it for the month of
    any `when` (from `referral_statuses`, the status timelines of all the partner's referrals).
    """

    now: datetime
    active_referrals: int = 0
    referral_statuses: tuple[tuple[StatusSpan, ...], ...] = ()

    def active_referrals_in(self, when: datetime) -> int:
        start, end = month_bounds(when)
        return sum(1 for spans in self.referral_statuses
                   if in_good_standing_during(spans, start, end))


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
    (`hub.ledger.explain` describes each of them in words):

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
    return (f"{format_rate(rate)} of {format_money(amount, currency)} paid on "
            f"{when.date().isoformat()}"
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


def add_months(when: datetime, months: int) -> datetime:
    """The same moment `months` calendar months later; the day is clamped to the month's last
    (Jan 31 + 1 month = Feb 28 or 29)."""
    index = when.month - 1 + months
    year, month = when.year + index // 12, index % 12 + 1
    return when.replace(year=year, month=month,
                        day=min(when.day, calendar.monthrange(year, month)[1]))


def within_months_of_first_payment(history: History, payment: Payment, months: int) -> bool:
    """True when `payment` falls in the first `months` months counted from the customer's first
    paid payment: from that moment (inclusive) to the same moment `months` calendar months later
    (exclusive). With monthly billing the first 12 months hold payments 1 to 12; payment 13,
    made exactly 12 months after the first, is outside."""
    first = history.first_payment_at or payment.occurred_at
    first = min(first, payment.occurred_at)
    return payment.occurred_at < add_months(first, months)


def month_bounds(when: datetime) -> tuple[datetime, datetime]:
    """The calendar month (UTC) holding `when`: [first moment, first moment of the next)."""
    start = when.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return start, add_months(start, 1)


def in_good_standing_during(spans: tuple[StatusSpan, ...], start: datetime, end: datetime) -> bool:
    """True when some trial/active span overlaps [start, end)."""
    return any(s.status in GOOD_STANDING and s.start < end and (s.end is None or s.end > start)
               for s in spans)


def good_standing_reached(spans: tuple[StatusSpan, ...], duration: timedelta) -> datetime | None:
    left = duration
    for span in spans:
        if span.status not in GOOD_STANDING:
            continue
        if span.end is None or span.end - span.start >= left:
            return span.start + left
        left -= span.end - span.start
    return None


def percentage_draft(payment: Payment, rate: Decimal, history: History, *,
                     rule: str = "recurring_percentage", note: str = "",
                     position: str = "") -> Draft:
    """The usual line of a percentage program: `rate` of the payment, in its currency, earned
    when it was paid, keyed by the payment so replays book it once. `position` follows the
    payment number in the sentence (" of the first 12 months")."""
    number = history.payment_number(payment)
    what = f"{payment.ref}, payment {number}{position}" + (f", {note}" if note else "")
    return Draft(
        key=f"pay:{payment.provider}:{payment.ref}", amount=percent_of(payment.amount, rate),
        currency=payment.currency, earned_at=payment.occurred_at, rule=rule,
        sentence=rate_sentence(rate, payment.amount, payment.currency, payment.occurred_at, what),
        inputs={"base": payment.amount, "rate": str(rate), "payment_number": number,
                "payment": payment.ref})


def first_months_percentage_draft(payment: Payment, rate: Decimal, history: History, months: int,
                                  *, rule: str, note: str = "") -> Draft | None:
    """`rate` of a payment in the first `months` months from the customer's first paid payment
    (see `within_months_of_first_payment`), None outside them. The line says where the payment
    falls: "payment 3 of the first 12 months", with `window_input` in its inputs."""
    if not within_months_of_first_payment(history, payment, months):
        return None
    start = min(history.first_payment_at or payment.occurred_at, payment.occurred_at)
    draft = percentage_draft(payment, rate, history, rule=rule, note=note,
                             position=f" of the first {months} months")
    window = window_input(history.payment_number(payment), months, start, add_months(start, months))
    return dataclasses.replace(draft, inputs={**draft.inputs, "window": window})


def check_rate(name: str, rate: Decimal) -> None:
    if not Decimal(0) <= rate <= Decimal(1):
        raise ValueError(f"{name} must be between 0 and 1")


def check_not_negative(**values: int) -> None:
    for name, value in values.items():
        if value < 0:
            raise ValueError(f"{name} cannot be negative")
