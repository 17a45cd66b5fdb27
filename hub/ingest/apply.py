"""Apply normalised facts: update what the hub knows, attribute, ask the program plugins, book.

Every handler is idempotent and order-safe: projections are inserted once per provider key,
commission lines once per rule key, and reversals are computed as "reverse up to the target"
from everything known about a payment, so a refund that arrives before its payment, or twice,
ends in the same ledger.
"""

from __future__ import annotations

from datetime import datetime
from functools import singledispatch
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from hub.attribution.clicks import claim_for_signup
from hub.attribution.coupons import partner_for_codes
from hub.attribution.customers import (
    attribute,
    claim_by_code,
    ensure_customer,
    event_cached,
    forget_cached,
    referrals_of,
)
from hub.attribution.partners import enroll_customer
from hub.attribution.referrals import Holder, can_earn, earning_partner
from hub.db.models import (
    Commission,
    Customer,
    InstallRecord,
    PaymentAdjustment,
    PaymentRecord,
    Referral,
    SubscriptionState,
)
from hub.db.upsert import insert_ignore, insert_ignore_row
from hub.facts import (
    AttributionClaimed,
    CouponApplied,
    CustomerSeen,
    InstallReported,
    PaymentAdjusted,
    PaymentFailed,
    PaymentSucceeded,
    PayoutStatusChanged,
    SignupReported,
    SubscriptionChanged,
)
from hub.ingest.decide import Booking, Earner, earner, install_bookings, payment_bookings
from hub.ledger import entries as ledger
from hub.ledger.history import build_history, history_for, payment_view
from hub.ledger.reversals import LINK, Adjustment, PaidAmount, reversal_target
from hub.ledger.statuses import record_state
from hub.payouts.answers import apply_status_fact
from hub.programs import Install
from hub.runtime import Hub


def apply(hub: Hub, session: Session, fact: Any, event_id: int | None) -> None:
    handle(fact, hub, session, event_id)


@singledispatch
def handle(fact: Any, hub: Hub, session: Session, event_id: int | None) -> None:
    raise TypeError(f"no handler for {type(fact).__name__}")


@handle.register
def _customer_seen(fact: CustomerSeen, hub: Hub, session: Session, event_id: int | None) -> None:
    customer = ensure_customer(session, fact.provider, fact.customer_ref, fact.occurred_at,
                               email=fact.email, partner_code=fact.partner_code,
                               install_id=fact.install_id)
    _enroll(hub, session, customer, event_id)
    if fact.partner_code:
        _claim(hub, session, customer, fact.partner_code, "code", fact.occurred_at, event_id)
    elif fact.install_id:
        _claim_by_install(hub, session, customer, fact.install_id, event_id)


def _enroll(hub: Hub, session: Session, customer: Customer, event_id: int | None) -> None:
    """Make the customer a referrer where its program says every customer is one; customers
    that named the new member's code before it existed are attributed to it now."""
    for partner in enroll_customer(hub, session, customer):
        waiting = session.scalars(select(Customer).where(
            Customer.partner_code == partner.code).order_by(Customer.first_seen_at)).all()
        for other in waiting:
            _claim(hub, session, other, partner.code, "code", other.first_seen_at, event_id)


@handle.register
def _attribution_claimed(fact: AttributionClaimed, hub: Hub, session: Session,
                         event_id: int | None) -> None:

    # A checkout's client_reference_id may carry a click id (clk_...) or a partner/link code.
    click_id = fact.code if fact.code.startswith("clk_") else None
    # A code is kept on the customer too: if its partner does not exist yet (events out of
    # order, an ambassador enrolled later), the next fact or the enrolment attributes it.
    customer = ensure_customer(session, fact.provider, fact.customer_ref, fact.occurred_at,
                               email=fact.email, partner_code=None if click_id else fact.code)
    _enroll(hub, session, customer, event_id)
    _claim_click_or_code(hub, session, customer, click_id, fact.code, fact.occurred_at, event_id,
                         code_source=fact.source)


def _claim_click_or_code(hub: Hub, session: Session, customer: Customer, click_id: str | None,
                         code: str | None, at: Any, event_id: int | None,
                         code_source: str = "code") -> None:
    """Attribute `customer` through a click (within its window) or else a code, and settle what
    the new referral earns. A code's source is `code_source` (e.g. the checkout's own)."""
    claim = claim_for_signup(hub, session, click_id=click_id, code=code, at=at)
    if claim is not None and attribute(
            hub, session, customer, claim.partner, at=at, event_id=event_id,
            source=code_source if claim.source == "code" else claim.source,
            click_id=claim.click_id, link_code=claim.link_code):
        settle_customer(hub, session, customer)


@handle.register
def _subscription_changed(fact: SubscriptionChanged, hub: Hub, session: Session,
                          event_id: int | None) -> None:
    customer = ensure_customer(session, fact.provider, fact.customer_ref, fact.occurred_at,
                               partner_code=fact.partner_code, install_id=fact.install_id)
    record_state(session, dict(
        provider=fact.provider, subscription_ref=fact.subscription_ref, customer_id=customer.id,
        status=fact.status, plan=fact.plan, occurred_at=fact.occurred_at, event_id=event_id,
        ends_at=fact.ends_at))
    if fact.partner_code:
        _claim(hub, session, customer, fact.partner_code, "code", fact.occurred_at, event_id)
    elif fact.install_id:
        _claim_by_install(hub, session, customer, fact.install_id, event_id)


@handle.register
def _payment_failed(fact: PaymentFailed, hub: Hub, session: Session, event_id: int | None) -> None:
    customer = ensure_customer(session, fact.provider, fact.customer_ref, fact.occurred_at)
    record_state(session, dict(
        provider=fact.provider, subscription_ref=fact.subscription_ref or fact.customer_ref,
        customer_id=customer.id, status="past_due", occurred_at=fact.occurred_at,
        event_id=event_id))


@handle.register
def _payment_succeeded(fact: PaymentSucceeded, hub: Hub, session: Session,
                       event_id: int | None) -> None:
    customer = ensure_customer(session, fact.provider, fact.customer_ref, fact.occurred_at,
                               email=fact.email, partner_code=fact.partner_code,
                               install_id=fact.install_id)
    _enroll(hub, session, customer, event_id)
    inserted = insert_ignore_row(session, PaymentRecord, dict(
        provider=fact.provider, ref=fact.payment_ref, charge_ref=fact.charge_ref,
        intent_ref=fact.intent_ref, customer_id=customer.id, subscription_ref=fact.subscription_ref,
        plan=fact.plan, amount=fact.amount, currency=fact.currency.upper(),
        gross_amount=fact.amount if fact.gross_amount is None else fact.gross_amount,
        occurred_at=fact.occurred_at, event_id=event_id))
    if fact.subscription_ref:
        # A paid invoice means the account is in good standing from now on.
        record_state(session, dict(
            provider=fact.provider, subscription_ref=fact.subscription_ref, customer_id=customer.id,
            status="active", plan=fact.plan, occurred_at=fact.occurred_at, event_id=event_id))
    code = fact.partner_code or customer.partner_code
    if code and _claim(hub, session, customer, code, "code", fact.occurred_at, event_id):
        return  # a new referral settles every known payment, this one included
    install_id = fact.install_id or customer.install_id
    if install_id and _claim_by_install(hub, session, customer, install_id, event_id):
        return
    if inserted is not None:
        forget_cached(session, ("payments", customer.id))
        settle_payment(hub, session, inserted, customer, fresh=True)
        _resettle_later_payments(hub, session, inserted, customer)


def _resettle_later_payments(hub: Hub, session: Session, payment: PaymentRecord,
                             customer: Customer) -> None:
    """A payment that arrived after later ones changes their history (e.g. the customer's first
    payment, from which a 12-month window counts): ask the rules again about the later ones, so
    the ledger ends as if the events had arrived in time order."""
    later = [p for p in _payments_of(session, customer.id)
             if p.id != payment.id and p.occurred_at >= payment.occurred_at]
    for other in later:
        settle_payment(hub, session, other, customer, cause_event_id=payment.event_id)


def _payments_of(session: Session, customer_id: int) -> list[PaymentRecord]:
    """The customer's payments in time order (read once per event: settling a payment builds
    the history from them and looks for the later ones in them)."""
    return event_cached(session, ("payments", customer_id), lambda: list(session.scalars(
        select(PaymentRecord).where(PaymentRecord.customer_id == customer_id)
        .order_by(PaymentRecord.occurred_at, PaymentRecord.ref)).all()))  # type: ignore[no-any-return]


def _history(session: Session, customer: Customer) -> Any:
    states = session.scalars(select(SubscriptionState)
                             .where(SubscriptionState.customer_id == customer.id)
                             .order_by(SubscriptionState.occurred_at, SubscriptionState.id)).all()
    return build_history(_payments_of(session, customer.id), list(states), customer.ref)


@handle.register
def _payment_adjusted(fact: PaymentAdjusted, hub: Hub, session: Session,
                      event_id: int | None) -> None:
    insert_ignore(session, PaymentAdjustment, dict(
        provider=fact.provider, kind=fact.kind, key=fact.key, payment_ref=fact.payment_ref,
        charge_ref=fact.charge_ref, intent_ref=fact.intent_ref, amount=fact.amount,
        occurred_at=fact.occurred_at, event_id=event_id))
    refs = linked_refs(session, fact.provider, {"payment_ref": {fact.payment_ref},
                                                "charge_ref": {fact.charge_ref},
                                                "intent_ref": {fact.intent_ref}})
    matches = _matching(PaymentRecord, refs, payment_column="ref")
    if not matches:
        return
    for payment in session.scalars(select(PaymentRecord).where(
            PaymentRecord.provider == fact.provider, or_(*matches))).all():
        reconcile(session, payment)


REF_KINDS = ("payment_ref", "charge_ref", "intent_ref")


def linked_refs(session: Session, provider: str,
                refs: dict[str, set[str | None]]) -> dict[str, set[str]]:
    """The payment references `refs` name (by kind), joined with every reference a `link`
    adjustment names beside one of them: a provider that tells apart which invoice an intent or
    charge paid (e.g. an invoice payment event) links them, so a refund naming only the charge
    finds the invoice, whichever of the three arrived first."""
    out = {kind: {v for v in refs.get(kind, ()) if v} for kind in REF_KINDS}
    matches = _matching(PaymentAdjustment, out)
    if not matches:
        return out
    for row in session.execute(select(
            PaymentAdjustment.payment_ref, PaymentAdjustment.charge_ref,
            PaymentAdjustment.intent_ref).where(
            PaymentAdjustment.provider == provider, PaymentAdjustment.kind == LINK,
            or_(*matches))).all():
        for kind, value in zip(REF_KINDS, row, strict=True):
            if value:
                out[kind].add(value)
    return out


def _matching(model: Any, refs: dict[str, set[str]], payment_column: str = "payment_ref"
              ) -> list[Any]:
    columns = {"payment_ref": getattr(model, payment_column), "charge_ref": model.charge_ref,
               "intent_ref": model.intent_ref}
    return [columns[kind].in_(sorted(values)) for kind, values in refs.items() if values]


@handle.register
def _install_reported(fact: InstallReported, hub: Hub, session: Session,
                      event_id: int | None) -> None:
    insert_ignore(session, InstallRecord, dict(
        install_id=fact.install_id, partner_code=fact.partner_code, product=fact.product,
        site=fact.site, customer_provider=fact.customer_provider, customer_ref=fact.customer_ref,
        occurred_at=fact.occurred_at, event_id=event_id))
    if not fact.customer_ref:
        return  # attributed later, when a payment or customer carries this install id
    customer = ensure_customer(session, fact.customer_provider, fact.customer_ref,
                               fact.occurred_at, install_id=fact.install_id)
    if not _claim_by_install(hub, session, customer, fact.install_id, event_id):
        settle_customer(hub, session, customer)


@handle.register
def _signup_reported(fact: SignupReported, hub: Hub, session: Session,
                     event_id: int | None) -> None:

    # Keep the code on the customer, as a checkout does: if its partner does not exist yet (an
    # ambassador whose own customer event is still on its way), the enrolment attributes it.
    customer = ensure_customer(session, fact.provider, fact.customer_ref, fact.occurred_at,
                               email=fact.email, partner_code=fact.code)
    _claim_click_or_code(hub, session, customer, fact.click_id, fact.code, fact.occurred_at,
                         event_id)


@handle.register
def _coupon_applied(fact: CouponApplied, hub: Hub, session: Session,
                    event_id: int | None) -> None:
    customer = ensure_customer(session, fact.provider, fact.customer_ref, fact.occurred_at,
                               email=fact.email)
    partner = partner_for_codes(session, fact.provider, fact.codes)
    if partner is not None and attribute(hub, session, customer, partner, source="code",
                                         at=fact.occurred_at, event_id=event_id):
        settle_customer(hub, session, customer)


@handle.register
def _payout_status(fact: PayoutStatusChanged, hub: Hub, session: Session,
                   event_id: int | None) -> None:
    apply_status_fact(hub, session, fact)


def _claim_by_install(hub: Hub, session: Session, customer: Customer, install_id: str | None,
                      event_id: int | None) -> Referral | None:
    """Attribute a customer through the partner code its installation reported."""
    if not install_id:
        return None
    install = session.scalars(select(InstallRecord).where(
        InstallRecord.install_id == install_id)).first()
    if install is None or not install.partner_code:
        return None
    if install.customer_ref is None:
        install.customer_ref, install.customer_provider = customer.ref, customer.provider
    return _claim(hub, session, customer, install.partner_code, "install", install.occurred_at,
                  event_id, install=install)


def _claim(hub: Hub, session: Session, customer: Customer, code: str, source: str, at: Any,
           event_id: int | None, install: Any = None) -> Referral | None:
    referral = claim_by_code(hub, session, customer, code, source=source, at=at, event_id=event_id,
                             install=install)
    if referral is not None:
        settle_customer(hub, session, customer)
    return referral


def settle_customer(hub: Hub, session: Session, customer: Customer) -> None:
    """Book whatever the customer's known payments and installs earn (after a new attribution)."""
    for payment in session.scalars(select(PaymentRecord).where(
            PaymentRecord.customer_id == customer.id).order_by(PaymentRecord.occurred_at)).all():
        settle_payment(hub, session, payment, customer)
    for install in session.scalars(select(InstallRecord).where(
            InstallRecord.customer_provider == customer.provider,
            InstallRecord.customer_ref == customer.ref).order_by(InstallRecord.occurred_at)).all():
        settle_install(hub, session, install, customer)


def settle_install(hub: Hub, session: Session, install: InstallRecord, customer: Customer) -> None:
    """Book once what an installation by `customer` earns in each referring program."""
    earners = _earners(hub, session, customer, install.occurred_at)
    if not earners:
        return
    view = Install(install_id=install.install_id, product=install.product, site=install.site,
                   customer_ref=customer.ref, occurred_at=install.occurred_at)
    history = history_for(session, customer.id, customer.ref)
    for booking in install_bookings(hub, earners, view, history):
        _book(session, booking, payment_id=None, install_id=install.id, event_id=install.event_id)


def _earners(hub: Hub, session: Session, customer: Customer, at: datetime) -> list[Earner]:
    """Who earns on something of `customer` dated `at`, per referral: program enabled, not a
    self-referral, the holder then active (before an operator's reassignment, the earlier
    holder)."""
    out = []
    for referral, partner in referrals_of(session, customer.id):
        program = hub.program(referral.program)
        if program is None or not can_earn(referral.self_referral, partner.status):
            continue
        holder = earning_partner(session, referral, partner, at)
        if holder is not None:
            out.append(earner(program, referral.id, Holder(holder.id, holder.kind, True),
                              customer_ref=customer.ref, source=referral.source,
                              attributed_at=referral.attributed_at))
    return out


def _book(session: Session, booking: Booking, *, payment_id: int | None,
          install_id: int | None = None, event_id: int | None) -> None:
    program = booking.earner.program
    ledger.book(session, program, booking.earner.partner_id, booking.draft,
                referral_id=booking.earner.referral_id, payment_id=payment_id,
                install_id=install_id, event_id=event_id, plugin_name=program.plugin)


def settle_payment(hub: Hub, session: Session, payment: PaymentRecord, customer: Customer, *,
                   cause_event_id: int | None = None, fresh: bool = False) -> None:
    """Book once what `payment` earns in each referring program, withdraw what it no longer
    earns (see `ledger.retract`), then apply adjustments. `fresh`: the payment row was inserted
    in this transaction and not settled before, so it has no lines that could be stale."""
    earners = _earners(hub, session, customer, payment.occurred_at)
    if earners:
        bookings = payment_bookings(hub, earners, payment_view(payment, customer.ref),
                                    _history(session, customer))
        for booking in bookings:
            _book(session, booking, payment_id=payment.id, event_id=payment.event_id)
        if not fresh:
            for e in earners:
                _retract_stale(session, payment, e.program.name, e.partner_id,
                               {b.draft.key for b in bookings if b.earner is e},
                               cause_event_id or payment.event_id)
    reconcile(session, payment)


def _retract_stale(session: Session, payment: PaymentRecord, program: str, partner_id: str,
                   keys: set[str], event_id: int | None) -> None:
    stale = session.scalars(select(Commission).where(
        Commission.payment_id == payment.id, Commission.program == program,
        Commission.partner_id == partner_id, Commission.reverses_id.is_(None),
        Commission.key.not_in(keys) if keys else Commission.id.is_not(None))).all()
    for line in stale:
        ledger.retract(session, line, event_id=event_id, sentence=(
            f"Payment {payment.ref} no longer earns this line: an earlier payment of the customer "
            f"arrived later and changed its history"))


def reconcile(session: Session, payment: PaymentRecord) -> None:
    """Reverse the payment's commissions as far as its refunds and disputes require (and book
    back what a dispute the merchant won had reversed)."""
    adjustments = [adjustment_view(a) for a in _adjustments_of(session, payment)]
    if not adjustments:
        return
    paid = PaidAmount(ref=payment.ref, gross_amount=payment.gross_amount, currency=payment.currency)
    lines = session.scalars(_with_lock(session, select(Commission).where(
        Commission.payment_id == payment.id, Commission.reverses_id.is_(None)))).all()
    for line in lines:
        target = reversal_target(line.amount, line.currency, paid, adjustments)
        if target is None:
            continue
        ledger.reverse_to(session, line, target.target, reason=target.reason,
                          sentence=target.sentence, event_id=target.event_id,
                          inputs=target.inputs)
        if target.reinstates:
            ledger.reinstate_to(session, line, target.target, reason=target.reason,
                                sentence=target.sentence, event_id=target.event_id,
                                inputs=target.inputs)


def adjustment_view(row: PaymentAdjustment) -> Adjustment:
    return Adjustment(kind=row.kind, amount=row.amount, occurred_at=row.occurred_at,
                      event_id=row.event_id, key=row.key)


def _adjustments_of(session: Session, payment: PaymentRecord) -> list[PaymentAdjustment]:
    """The payment's refunds and disputes: those naming one of its references, and those naming
    a reference a link joins to it. One query unless a link names the payment."""
    refs: dict[str, set[str]] = {"payment_ref": {payment.ref}, "charge_ref": set(),
                                 "intent_ref": set()}
    if payment.charge_ref:
        refs["charge_ref"].add(payment.charge_ref)
    if payment.intent_ref:
        refs["intent_ref"].add(payment.intent_ref)
    rows = _adjustments_named(session, payment.provider, refs)
    links = [row for row in rows if row.kind == LINK]
    if links:
        for link in links:
            for kind in REF_KINDS:
                if getattr(link, kind):
                    refs[kind].add(getattr(link, kind))
        rows = _adjustments_named(session, payment.provider, refs)
    return [row for row in rows if row.kind != LINK]


def _adjustments_named(session: Session, provider: str,
                       refs: dict[str, set[str]]) -> list[PaymentAdjustment]:
    return list(session.scalars(select(PaymentAdjustment).where(
        PaymentAdjustment.provider == provider,
        or_(*_matching(PaymentAdjustment, refs)))).all())


def _with_lock(session: Session, stmt: Any) -> Any:
    """Row locks where the database has them; SQLite already serialises writers."""
    return stmt.with_for_update() if session.get_bind().dialect.name == "postgresql" else stmt
