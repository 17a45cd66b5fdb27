"""The tables. Money is integer minor units plus an ISO 4217 code; ids are short prefixed strings.

`ledger_entries` is append-only (a trigger refuses UPDATE and DELETE): a balance is a sum of
entries, never a stored counter. Each entry names the commission line and the provider event
behind it. Projections of provider facts (customers, payments, subscription states) may be
updated as newer facts arrive; the ledger never is.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Computed,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# REFERENCES: eight references carry no foreign key; triggers of migration s17_reference_checks
# check them instead: the event behind a payment, subscription state, commission or ledger leg
# (`event_id`), a commission's payment and reversed line, a leg's line and commission. Per-row
# foreign key checks were the largest share of a payment's database time; on PostgreSQL the
# triggers check all the rows of a statement with one query a reference (SQLite: per row). Other
# triggers refuse deleting an event, payment or commission line or changing its id, so a
# reference once checked stays valid and no check needs to lock the row it found.


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on SQLite (which keeps no zone) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware UTC time")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict: JSON, int: BigInteger}


class Partner(Base):
    """A membership of one person or company in one program (a partner, referral or affiliate)."""

    __tablename__ = "partners"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("prt"))
    program: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32), default="partner")
    status: Mapped[str] = mapped_column(String(16), default="active")
    code: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    paypal_email: Mapped[str | None] = mapped_column(String(320))
    # When the PayPal address was confirmed (its mailed link, or set by the operator); no payout
    # goes to an unconfirmed one (`hub.payouts.payee`).
    paypal_confirmed_at: Mapped[datetime | None]
    website: Mapped[str | None] = mapped_column(String(500))
    # "paypal", or "manual": paid by hand from the operator's list (no PayPal account)
    payout_method: Mapped[str] = mapped_column(String(32), default="paypal")
    customer_ref: Mapped[str | None] = mapped_column(String(128))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    billing_details: Mapped[str | None] = mapped_column(Text)
    agreement_accepted_at: Mapped[datetime | None]
    # The program's `agreement_version` accepted then (None: the program names no version).
    agreement_version: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    # A mail for each commission earned, unless the partner turned it off in the portal.
    mail_commissions: Mapped[bool] = mapped_column(Boolean, default=True,
                                                   server_default=text("true"))
    email_verified_at: Mapped[datetime | None]


class Customer(Base):
    """A provider's customer as the hub knows it, whether referred or not."""

    __tablename__ = "customers"
    __table_args__ = (UniqueConstraint("provider", "ref"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(16))
    ref: Mapped[str] = mapped_column(String(128))
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    partner_code: Mapped[str | None] = mapped_column(String(64))
    install_id: Mapped[str | None] = mapped_column(String(128))
    first_seen_at: Mapped[datetime]


class Referral(Base):
    """A customer attributed to a partner in one program; the first attribution wins.

    `effective_from` is set when an operator reassigns the customer: payments before it earn
    nothing for this referral (they stay with the partner who had the customer then).
    """

    __tablename__ = "referrals"
    __table_args__ = (UniqueConstraint("program", "customer_id"),
                      Index("ix_referrals_link_time", "link_code", "attributed_at"),
                      # the portal lists a partner's referrals newest first, a page at a time
                      Index("ix_referrals_partner_attributed", "partner_id", "attributed_at"),
                      # referrals not yet in `referral_counts` (hub.attribution.counts)
                      Index("ix_referrals_uncounted", "customer_id",
                            postgresql_where=text("uncounted = 1"),
                            sqlite_where=text("uncounted = 1")))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    program: Mapped[str] = mapped_column(String(64))
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    source: Mapped[str] = mapped_column(String(16))
    attributed_at: Mapped[datetime]
    click_id: Mapped[str | None] = mapped_column(String(64))
    link_code: Mapped[str | None] = mapped_column(String(64))
    self_referral: Mapped[bool] = mapped_column(Boolean, default=False)
    flag_reason: Mapped[str | None] = mapped_column(String(200))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("provider_events.id"))
    effective_from: Mapped[datetime | None]
    # What `referral_counts` counted this referral as (hub.attribution.counts); only tick sets them.
    counted_partner_id: Mapped[str | None] = mapped_column(String(32))
    counted_link_code: Mapped[str | None] = mapped_column(String(64))
    # 1 while the live values differ from the counted ones. Computed by the database, so
    # writers need not know it, and a plain column, so the planner has statistics on it.
    uncounted: Mapped[int] = mapped_column(Integer, Computed(
        "CASE WHEN counted_partner_id = partner_id AND (counted_link_code = link_code OR "
        "(counted_link_code IS NULL AND link_code IS NULL)) THEN 0 ELSE 1 END", persisted=True))


class ReferralHandover(Base):
    """Who held a referral before an operator reassigned it, until when: payments dated before
    `until` (even ones that arrive later) still earn for that partner."""

    __tablename__ = "referral_handovers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id"), index=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"))
    source: Mapped[str] = mapped_column(String(16))
    attributed_at: Mapped[datetime]
    until: Mapped[datetime]
    self_referral: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]


class Link(Base):
    """A partner's referral link. The default link's code is the partner code (created on first
    use); `kind` is ``default``, ``custom`` (link builder) or ``widget`` (the "by <product>" link
    under a customer-partner's installed widget, one per partner)."""

    __tablename__ = "links"
    __table_args__ = (
        Index("uq_links_widget", "partner_id", unique=True,
              sqlite_where=text("kind = 'widget'"), postgresql_where=text("kind = 'widget'")),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("lnk"))
    code: Mapped[str] = mapped_column(String(64), unique=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    program: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16), default="custom")
    destination: Mapped[str | None] = mapped_column(String(2000))
    trial_days: Mapped[int | None] = mapped_column(Integer)
    creative: Mapped[str] = mapped_column(String(16), default="plain")
    description: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]


class Click(Base):
    """One human click on a link. `visitor` is the cookie's visitor id or a keyed hash of IP and
    user agent (the raw IP is never stored); `is_unique` marks the first click of a visitor on a
    link in a 30-day window. `day` (UTC, YYYY-MM-DD) makes per-day counts a cheap GROUP BY."""

    __tablename__ = "clicks"
    __table_args__ = (Index("ix_clicks_link_day", "link_code", "day"),
                      Index("ix_clicks_partner_day", "partner_id", "day"))
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    link_code: Mapped[str] = mapped_column(String(64))
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"))
    program: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16), default="link")
    visitor: Mapped[str] = mapped_column(String(64))
    is_unique: Mapped[bool] = mapped_column(Boolean, default=False)
    clicked_at: Mapped[datetime]
    day: Mapped[str] = mapped_column(String(10))


class LinkVisitor(Base):
    """Where a visitor's current unique-click window on a link started (one row per pair)."""

    __tablename__ = "link_visitors"
    __table_args__ = (UniqueConstraint("link_code", "visitor"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    link_code: Mapped[str] = mapped_column(String(64))
    visitor: Mapped[str] = mapped_column(String(64))
    window_start: Mapped[datetime]


class CouponCode(Base):
    """A provider coupon or promotion code that attributes its customers to a partner."""

    __tablename__ = "coupon_codes"
    __table_args__ = (UniqueConstraint("provider", "code"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(128))
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    created_at: Mapped[datetime]


class ProviderEvent(Base):
    """Every provider event exactly once, with its raw payload: the root of every cent."""

    __tablename__ = "provider_events"
    __table_args__ = (UniqueConstraint("provider", "event_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(80))
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime]
    payload: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(32), default="processed")


class PaymentRecord(Base):
    """A successful payment seen from a provider (referred or not: attribution may come later)."""

    __tablename__ = "payments"
    __table_args__ = (UniqueConstraint("provider", "ref"),
                      # the dashboard's first payments of today
                      # (hub.ledger.statuses.first_payments_since)
                      Index("ix_payments_occurred", "occurred_at"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(16))
    ref: Mapped[str] = mapped_column(String(128))
    charge_ref: Mapped[str | None] = mapped_column(String(128), index=True)
    intent_ref: Mapped[str | None] = mapped_column(String(128), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    subscription_ref: Mapped[str | None] = mapped_column(String(128))
    plan: Mapped[str | None] = mapped_column(String(64))
    amount: Mapped[int]  # the commissionable amount: net of tax the provider states apart
    gross_amount: Mapped[int]  # what the customer paid; refunds are a share of this
    currency: Mapped[str] = mapped_column(String(3))
    occurred_at: Mapped[datetime]
    event_id: Mapped[int] = mapped_column(Integer)  # the event applied: see REFERENCES


class PaymentAdjustment(Base):
    """A refund or dispute, keyed by whatever payment reference the provider gave.

    Kept apart from payments so that a refund arriving before its payment is not lost: when the
    payment shows up, its adjustments are found by reference and applied.
    kind: ``refund_total`` (cumulative refunded, Stripe), ``refund`` (one refund, PayPal),
    ``dispute`` (whole reversal), ``dispute_won`` (money came back).
    """

    __tablename__ = "payment_adjustments"
    __table_args__ = (UniqueConstraint("provider", "kind", "key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(200))
    payment_ref: Mapped[str | None] = mapped_column(String(128), index=True)
    charge_ref: Mapped[str | None] = mapped_column(String(128), index=True)
    intent_ref: Mapped[str | None] = mapped_column(String(128), index=True)
    amount: Mapped[int]
    occurred_at: Mapped[datetime]
    event_id: Mapped[int] = mapped_column(ForeignKey("provider_events.id"))


class SubscriptionState(Base):
    """The status timeline of a customer's subscription, one row per provider fact."""

    __tablename__ = "subscription_states"
    __table_args__ = (UniqueConstraint("provider", "subscription_ref", "occurred_at", "status"),
                      Index("ix_subscription_states_customer_time", "customer_id", "occurred_at"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(16))
    subscription_ref: Mapped[str] = mapped_column(String(128))
    # Looked up through ix_subscription_states_customer_time (0003 dropped the single one).
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    status: Mapped[str] = mapped_column(String(16))
    plan: Mapped[str | None] = mapped_column(String(64))
    occurred_at: Mapped[datetime]
    event_id: Mapped[int | None] = mapped_column(Integer)  # see REFERENCES
    # When the trial or the paid period the fact names ends (None: the fact does not say).
    ends_at: Mapped[datetime | None]


class CustomerStatus(Base):
    """A customer's latest subscription state (a projection of `subscription_states`, kept by
    `hub.ledger.statuses.record_state`): the newest `occurred_at` wins, whatever order facts arrive
    in."""

    __tablename__ = "customer_statuses"
    __table_args__ = (Index("ix_customer_statuses_uncounted", "customer_id",
                            postgresql_where=text("uncounted = 1"),
                            sqlite_where=text("uncounted = 1")),)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    plan: Mapped[str | None] = mapped_column(String(64))
    occurred_at: Mapped[datetime]
    # The status `referral_counts` counted this customer's referrals in; only tick sets it.
    counted_status: Mapped[str | None] = mapped_column(String(16))
    uncounted: Mapped[int] = mapped_column(Integer, Computed(
        "CASE WHEN counted_status = status THEN 0 ELSE 1 END", persisted=True))


class ReferralCount(Base):
    """How many of a partner's referrals are in each `status` (of `customer_statuses`) and came
    through each `link` code, as counted by `hub tick` (`hub.attribution.counts`). A live count is
    this plus the referrals and statuses that changed since (the `counted_*` columns differ)."""

    __tablename__ = "referral_counts"
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    dimension: Mapped[str] = mapped_column(String(8), primary_key=True)  # status | link
    value: Mapped[str] = mapped_column(String(64), primary_key=True)
    n: Mapped[int] = mapped_column(Integer)


class ActivityDay(Base):
    """How many of a partner's referred customers were in trial and paying at the end of a closed
    UTC day, and how many were referred (`new_trials`) and paid for the first time
    (`new_subscriptions`) on it; written by `hub tick` (`hub.ledger.statuses.snapshot_activity`) for
    the portal's charts."""

    __tablename__ = "activity_days"
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    trials: Mapped[int] = mapped_column(Integer)
    paying: Mapped[int] = mapped_column(Integer)
    new_trials: Mapped[int] = mapped_column(Integer, default=0)
    new_subscriptions: Mapped[int] = mapped_column(Integer, default=0)


class InstallRecord(Base):
    """An installation reported by a module installer or widget (once per install id)."""

    __tablename__ = "installs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    install_id: Mapped[str] = mapped_column(String(128), unique=True)
    partner_code: Mapped[str | None] = mapped_column(String(64))
    product: Mapped[str] = mapped_column(String(64))
    site: Mapped[str | None] = mapped_column(String(500))
    customer_provider: Mapped[str] = mapped_column(String(16), default="stripe")
    customer_ref: Mapped[str | None] = mapped_column(String(128), index=True)
    occurred_at: Mapped[datetime]
    event_id: Mapped[int] = mapped_column(ForeignKey("provider_events.id"))


class Commission(Base):
    """A commission line: positive when earned, negative when it reverses an earlier line.

    `key` is the rule's stable name for its cause, unique per program and partner, which makes
    every booking idempotent. `rule` holds the derivation (plugin, settings hash, inputs, sentence).
    """

    __tablename__ = "commissions"
    __table_args__ = (UniqueConstraint("program", "partner_id", "key"),
                      Index("ix_commissions_partner_earned", "partner_id", "earned_at"),
                      Index("ix_commissions_partner_created", "partner_id", "created_at"))
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("com"))
    program: Mapped[str] = mapped_column(String(64))
    # Looked up through ix_commissions_partner_earned / _created (0003 dropped the single one).
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"))
    referral_id: Mapped[int | None] = mapped_column(ForeignKey("referrals.id"), index=True)
    key: Mapped[str] = mapped_column(String(200))
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    earned_at: Mapped[datetime]
    available_at: Mapped[datetime] = mapped_column(index=True)
    # reverses_id, payment_id, event_id: see REFERENCES
    reverses_id: Mapped[str | None] = mapped_column(String(32), index=True)
    payment_id: Mapped[int | None] = mapped_column(Integer, index=True)
    install_id: Mapped[int | None] = mapped_column(ForeignKey("installs.id"))
    event_id: Mapped[int | None] = mapped_column(Integer)
    rule: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime]


class LedgerEntry(Base):
    """One leg of a transfer between a partner's (currency, state) accounts. Append-only.

    states: pending -> payable -> in_payout -> paid; reversals go to voided.
    """

    __tablename__ = "ledger_entries"
    __table_args__ = (
        Index("ix_ledger_balance", "partner_id", "currency", "state"),
        # a partner's entries past the checkpoint watermark (hub.ledger.checkpoints), read from
        # the index alone: so cheap that the planner never prefers the newest entries of all
        Index("ix_ledger_partner_seq", "partner_id", "id",
              postgresql_include=["currency", "state", "amount", "line_id"]),
        # A commission is released from its hold exactly once, however many ticks race.
        Index("uq_ledger_release", "commission_id", unique=True,
              sqlite_where=text("kind = 'release' AND amount > 0"),
              postgresql_where=text("kind = 'release' AND amount > 0")),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    transfer_id: Mapped[str] = mapped_column(String(32))  # never searched by (0003)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"))
    currency: Mapped[str] = mapped_column(String(3))
    state: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int]
    kind: Mapped[str] = mapped_column(String(16))
    # commission_id: the earning the money belongs to (also on its reversals and release);
    # line_id: the commission line that booked this leg (the reversal line for reversals).
    # commission_id, line_id, event_id: see REFERENCES
    commission_id: Mapped[str | None] = mapped_column(String(32), index=True)
    line_id: Mapped[str | None] = mapped_column(String(32))
    payout_id: Mapped[str | None] = mapped_column(ForeignKey("payouts.id"), index=True)
    event_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]


class PayoutBatch(Base):
    """Payouts handed to a provider in one request (a PayPal batch of up to `BATCH_SIZE` items).

    Written with its payouts, before the provider is called: the provider's idempotency key
    (``hub-<batch id>``) derives from this row, so a resend after a crash is the same request
    and the provider either refuses it as a duplicate (then the hub follows its link to the
    original) or never had it. Membership is fixed at creation (`Payout.batch_id`).
    """

    __tablename__ = "payout_batches"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("pb"))
    method: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)  # queued, sent, failed, dry_run
    items: Mapped[int]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    provider_batch_id: Mapped[str | None] = mapped_column(String(64))
    provider_status: Mapped[str | None] = mapped_column(String(32))
    failure_reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class LedgerWatermark(Base):
    """How far the checkpoints have summed the ledger: every entry with `id <= through_id`. One
    row (id 1), moved forward by `hub tick` (`hub.ledger.checkpoints.checkpoint_ledger`)."""

    __tablename__ = "ledger_watermark"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    through_id: Mapped[int] = mapped_column(BigInteger)


class BalanceCheckpoint(Base):
    """The sum of a partner's (currency, state) account over the entries up to the watermark. A
    balance is this plus the entries after it: derivable from the ledger, never edited by hand."""

    __tablename__ = "balance_checkpoints"
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), primary_key=True)
    amount: Mapped[int] = mapped_column(BigInteger)


class CommissionDay(Base):
    """The sum of a partner's commission lines per currency and UTC day of `earned_at`, over the
    lines booked by entries up to the watermark (reversals on the day of what they reverse)."""

    __tablename__ = "commission_days"
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    amount: Mapped[int] = mapped_column(BigInteger)


class Payout(Base):
    """Money going to a partner: a row first (the outbox), a queue message second.

    Creating one reserves the money (payable -> in_payout, one leg per commission, each naming
    this payout). `period` names the monthly or manual-list period a scheduled payout belongs
    to, unique per partner and currency so a sweep that runs twice creates it once.
    """

    __tablename__ = "payouts"
    __table_args__ = (UniqueConstraint("partner_id", "currency", "period"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("po"))
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    program: Mapped[str] = mapped_column(String(64))
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), index=True)
    method: Mapped[str] = mapped_column(String(16), default="paypal")
    receiver: Mapped[str | None] = mapped_column(String(320))
    # The partner's billing details (bank account, address) when the payout was created: a payout
    # made by hand goes where the partner said then, not where a later change points.
    payee_details: Mapped[str | None] = mapped_column(Text)
    reference: Mapped[str | None] = mapped_column(String(200))
    period: Mapped[str | None] = mapped_column(String(16))
    # The provider batch this payout travels in; None for a payout sent alone (its own
    # sender_batch_id ``hub-<payout id>``, as every payout was before batches existed).
    batch_id: Mapped[str | None] = mapped_column(ForeignKey("payout_batches.id"), index=True)
    provider_batch_id: Mapped[str | None] = mapped_column(String(64))
    provider_item_id: Mapped[str | None] = mapped_column(String(64))
    failure_reason: Mapped[str | None] = mapped_column(String(500))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # True when the send job gave up on transient errors: PayPal may or may not hold the batch,
    # so the money stays reserved until the operator retries (same sender_batch_id) or rejects.
    dead_letter: Mapped[bool] = mapped_column(Boolean, default=False)
    provider_status: Mapped[str | None] = mapped_column(String(32))
    request: Mapped[dict | None] = mapped_column(JSON)  # what was (or in dry-run, would be) sent
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    settled_at: Mapped[datetime | None]


class WebhookEndpoint(Base):
    """An operator's receiver for outgoing webhooks; `events` empty means all of them."""

    __tablename__ = "webhook_endpoints"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("we"))
    url: Mapped[str] = mapped_column(String(1000))
    secret: Mapped[str] = mapped_column(String(200))
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class WebhookDelivery(Base):
    """One event for one endpoint: the outbox row and its delivery log.

    Written in the transaction that caused the event; sent by a job after the commit. The unique
    (endpoint, event) makes emitting twice (a replayed provider event) deliver once.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("endpoint_id", "event_id"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("wd"))
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id"), index=True)
    event_id: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    response_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]


class Mail(Base):
    """One e-mail: the outbox row and its sending log.

    Written in the transaction of its cause with a `key` naming that cause (unique: a replayed
    provider event or a second click mails once); sent by the `mail.send` job after the commit.
    The context is what the template needs, cleared once the mail is sent (it may hold a
    one-time link)."""

    __tablename__ = "mails"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("ml"))
    key: Mapped[str] = mapped_column(String(200), unique=True)
    template: Mapped[str] = mapped_column(String(64))
    to_addr: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(String(300))
    context: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class AuditLog(Base):
    """Who did what, when: every operator action."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    at: Mapped[datetime]


class PasswordResetToken(Base):
    """A one-time, expiring link that lets a partner set its portal password (`purpose`
    ``reset``: sent by the operator or asked for with "Forgot password?") or confirm its e-mail
    address (``verify``, on self sign-up).

    Only the SHA-256 of the token is stored: the link itself is shown or mailed once."""

    __tablename__ = "password_reset_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(16), default="reset",
                                         server_default=text("'reset'"))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class LoginSession(Base):
    """A signed-in browser session of the portal or the admin, so that log-out can end it.

    The signed cookie names the session by a random token; only its SHA-256 is stored. A request
    whose session row is gone (logged out, password changed, expired) is signed out."""

    __tablename__ = "login_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    area: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(64), index=True)  # partner id, or "operator"
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class Material(Base):
    """An advertising material (banner, logo, text) the operator uploaded for partners.

    The file lives on disk under ``[server] materials_dir``; `program` None means every program."""

    __tablename__ = "materials"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("mat"))
    program: Mapped[str | None] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(String(200))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int]
    created_at: Mapped[datetime]
