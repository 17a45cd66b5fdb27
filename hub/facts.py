"""Normalised facts: what connectors turn provider payloads into, and all the core understands.

Each fact keeps the provider's own ids and business time (`occurred_at`); nothing
provider-specific goes past this point.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


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
    customer_provider: str = "stripe"


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
