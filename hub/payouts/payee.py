"""Where a partner's money may go: its payout method and whether its PayPal address is confirmed.

A partner is paid through PayPal (`payout_method` ``paypal``, the default) or by hand
(``manual``: it said it has no PayPal account, or the operator switched it; the operator and the
partner agree how). A PayPal address counts only once confirmed (`paypal_confirmed_at`): by the
partner, through the one-time link mailed to that address, or by the operator, who set it
through the admin or the operator API. Until then no payout is made to it: the money waits in
``payable``. Every change here is audited by the caller's actor.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.attribution.emails import EMAIL_RE
from hub.clock import utcnow
from hub.db.audit import record_action
from hub.db.models import Partner, Payout
from hub.errors import Unprocessable
from hub.notify import notices

PAYPAL, MANUAL = "paypal", "manual"
METHODS = (PAYPAL, MANUAL)
NOT_SENT = "not sent: the PayPal address is no longer the partner's confirmed address"
REMOVED = "no PayPal address (it was removed; payouts are made by hand)"  # for `payee_changed`
State = Literal["ready", "unconfirmed", "none"]


def paypal_state(paypal_email: str | None, confirmed_at: datetime | None,
                 payout_method: str | None) -> State:
    """``ready``: a confirmed address a gateway may pay; ``unconfirmed``: an address that waits
    for its confirmation; ``none``: no address, or a partner paid by hand."""
    if not paypal_email or payout_method == MANUAL:
        return "none"
    return "ready" if confirmed_at is not None else "unconfirmed"


def state_of(partner: Partner) -> State:
    return paypal_state(partner.paypal_email, partner.paypal_confirmed_at, partner.payout_method)


def unconfirmed_receivers(session: Session, payouts: list[Payout]) -> list[Payout]:
    """The gateway payouts of `payouts` whose receiver is not (any more) their partner's
    confirmed PayPal address: removed, changed, or paid by hand since the payout was made. The
    sending holds them back before their first send (`payouts.batches`, `payouts.sending`)."""
    ids = sorted({p.partner_id for p in payouts if p.receiver})
    if not ids:
        return []
    rows = session.execute(select(Partner.id, Partner.paypal_email, Partner.paypal_confirmed_at,
                                  Partner.payout_method).where(Partner.id.in_(ids))).all()
    ready = {pid: email for pid, email, confirmed, method in rows
             if paypal_state(email, confirmed, method) == "ready"}
    return [p for p in payouts if p.receiver and ready.get(p.partner_id) != p.receiver]


def set_paypal(session: Session, partner: Partner, address: str | None, *, actor: str,
               confirmed: bool, **details: object) -> bool:
    """Set (or with None remove) the partner's PayPal address; True when it changed. An address
    set by the partner waits for its confirmation; one set by the operator (`confirmed`) is
    confirmed by the operator. Setting an address chooses PayPal as the payout method."""
    previous = partner.paypal_email
    changed = address != previous
    if changed:
        record_action(session, actor, "partner.payee_changed", partner.id, field="paypal_email",
                      old=previous, new=address, **details)
        partner.paypal_email = address
        partner.paypal_confirmed_at = None
    if address and confirmed and partner.paypal_confirmed_at is None:
        partner.paypal_confirmed_at = utcnow()
        record_action(session, actor, "partner.paypal_confirmed", partner.id, address=address)
    if address and partner.payout_method != PAYPAL:
        set_method(session, partner, PAYPAL, actor=actor)
    return changed


def set_method(session: Session, partner: Partner, method: str, *, actor: str,
               note: str | None = None) -> bool:
    """Switch between PayPal and payment by hand; True when it changed. A partner without a
    PayPal address may be switched to PayPal: it is paid by hand until it adds one."""
    _check_method(method)
    if method == partner.payout_method and not note:
        return False
    record_action(session, actor, "partner.payout_method", partner.id,
                  old=partner.payout_method, new=method, note=note)
    partner.payout_method = method
    return True


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise Unprocessable(f"payout_method must be one of {', '.join(METHODS)}",
                            code="invalid_method")


def confirm(session: Session, partner: Partner, address: str, *, actor: str) -> bool:
    """Confirm `address` if it is still the partner's PayPal address (a link mailed for an
    earlier address confirms nothing); True when it is confirmed now."""
    if partner.paypal_email != address or partner.payout_method == MANUAL:
        return False
    if partner.paypal_confirmed_at is None:
        partner.paypal_confirmed_at = utcnow()
        record_action(session, actor, "partner.paypal_confirmed", partner.id, address=address)
    return True


UNSET = object()


def operator_update(session: Session, partner: Partner, *, actor: str,
                    payout_method: str | None = None, paypal_email: object = UNSET,
                    note: str | None = None) -> bool:
    """The operator's change (admin page or ``PATCH /api/v1/partners/{id}``), audited as
    `actor`: a PayPal address it sets counts as confirmed by the operator (None removes it), then
    the method. True when the address changed; the account's address and the old PayPal
    address are told, as when the partner changes it."""
    if payout_method is not None:
        _check_method(payout_method)  # before any change
    before, changed = partner.paypal_email, False
    if paypal_email is not UNSET:
        if paypal_email is not None and (not isinstance(paypal_email, str)
                                         or len(paypal_email) > 320
                                         or not EMAIL_RE.match(paypal_email)):
            raise Unprocessable("paypal_email is not a valid address", code="invalid_email")
        address = paypal_email if isinstance(paypal_email, str) and paypal_email else None
        changed = set_paypal(session, partner, address, actor=actor, confirmed=True)
    if payout_method is not None:
        set_method(session, partner, payout_method, actor=actor, note=(note or "")[:500] or None)
    if changed:
        notices.payee_changed(session, partner, before, partner.paypal_email or REMOVED)
    return changed
