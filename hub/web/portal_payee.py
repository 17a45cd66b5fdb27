"""The portal's side of where a partner's money goes (`hub.payouts.payee`): the PayPal address
(set, removed, confirmed through the link mailed to it), "I have no PayPal account" (paid by
hand from the operator's list), and the billing details' password and audit.

Each change needs the current password (except at sign-up, where the account is being made) and
is audited with the partner as the actor; the account's address and the old PayPal address are
told of a new one (`notices.payee_changed`), the new one gets its confirmation link.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import timedelta

from starlette.responses import Response

from hub.attribution import passwords
from hub.attribution.partners import EMAIL_RE
from hub.db.audit import record_action
from hub.db.models import Partner
from hub.errors import Unprocessable
from hub.notify import notices
from hub.payouts import payee
from hub.web.pages import View
from hub.web.security import secret_key

RESEND_THROTTLE = timedelta(minutes=5)  # at most one confirmation mail per address this often


def actor_of(partner: Partner) -> str:
    return f"partner:{partner.id}"


def client_of(view: View) -> str | None:
    return view.request.client.host if view.request.client else None


def require_password(view: View, partner: Partner) -> None:
    if not passwords.verify_password(partner.password_hash, view.value("current_password")):
        raise Unprocessable("your current password is wrong")


def audit_billing_change(view: View, partner: Partner, old: str | None, new: str | None) -> None:
    """Record a change of the billing details (bank accounts) as keyed digests, so the audit log
    does not become a second copy of them."""
    record_action(view.db, actor_of(partner), "partner.payee_changed", partner.id,
                  field="billing_details", old=_digest(view, old), new=_digest(view, new),
                  client=client_of(view))


def _digest(view: View, value: str | None) -> str | None:
    """A keyed digest (HMAC with the secret key): tells changes apart without being a way to
    guess the details back from the audit log."""
    if not value:
        return None
    return hmac.new(secret_key(view.hub).encode(), value.encode(), hashlib.sha256).hexdigest()[:16]


def send_confirmation(view: View, partner: Partner) -> bool:
    """Mail a one-time link to the partner's PayPal address; False when one went there in the
    last `RESEND_THROTTLE` (or there is nothing to confirm)."""
    address = partner.paypal_email
    if payee.state_of(partner) != "unconfirmed" or not address:
        return False
    purpose = passwords.paypal_purpose(address)
    if passwords.recently_sent(view.db, partner.id, RESEND_THROTTLE, purpose=purpose):
        return False
    token, expires = passwords.create_reset_token(view.db, partner.id, purpose=purpose,
                                                  valid_for=passwords.PAYPAL_VALID_FOR)
    return notices.paypal_confirmation(view.db, partner, token, expires)


# -- the settings page's forms (`action`) ----------------------------------------------------

def save_paypal(view: View, partner: Partner) -> None:
    require_password(view, partner)
    email = view.value("paypal_email").strip()
    if not EMAIL_RE.match(email) or len(email) > 320:
        raise Unprocessable("that is not an e-mail address")
    previous = partner.paypal_email
    if payee.set_paypal(view.db, partner, email, actor=actor_of(partner), confirmed=False,
                        client=client_of(view)):
        notices.payee_changed(view.db, partner, previous, email)
    send_confirmation(view, partner)
    if payee.state_of(partner) == "ready":
        view.flash("Your PayPal e-mail is saved.")
    else:
        view.flash(f"Your PayPal e-mail is changed. We sent a mail to {email}: open the link in "
                   "it to confirm the address; no payout goes to it before.")


def remove_paypal(view: View, partner: Partner) -> None:
    require_password(view, partner)
    previous = partner.paypal_email
    if previous is None:
        raise Unprocessable("there is no PayPal address to remove")
    payee.set_paypal(view.db, partner, None, actor=actor_of(partner), confirmed=False,
                     client=client_of(view))
    notices.payee_changed(view.db, partner, previous, payee.REMOVED)
    view.flash("Your PayPal address is removed; no payout goes to PayPal until you add one.")


def choose_manual(view: View, partner: Partner) -> None:
    """"I have no PayPal account": paid by hand, any address removed."""
    require_password(view, partner)
    previous = partner.paypal_email
    if previous is not None:
        payee.set_paypal(view.db, partner, None, actor=actor_of(partner), confirmed=False,
                         client=client_of(view))
        notices.payee_changed(view.db, partner, previous, payee.REMOVED)
    if payee.set_method(view.db, partner, payee.MANUAL, actor=actor_of(partner)):
        notices.paid_by_hand(view.hub, view.db, partner, actor_of(partner))
    view.flash("You are paid by hand from now on: the program's operator will contact you to "
               "agree how and when.")


def resend(view: View, partner: Partner) -> None:
    if payee.state_of(partner) != "unconfirmed":
        raise Unprocessable("there is no PayPal address waiting for its confirmation")
    if send_confirmation(view, partner):
        view.flash(f"We sent the link again to {partner.paypal_email}.")
    else:
        view.flash(f"We sent a link to {partner.paypal_email} a few minutes ago; check that "
                   "mailbox (and its spam folder) before asking again.", "error")


ACTIONS: dict[str, Callable[[View, Partner], None]] = {
    "paypal": save_paypal, "paypal_remove": remove_paypal, "no_paypal": choose_manual,
    "paypal_resend": resend}


def after_signup(view: View, partner: Partner, no_paypal: bool) -> None:
    """The sign-up's choice: paid by hand (the operator is told), or the address's link."""
    if no_paypal:
        payee.set_method(view.db, partner, payee.MANUAL, actor=actor_of(partner))
        notices.paid_by_hand(view.hub, view.db, partner, actor_of(partner))
    else:
        send_confirmation(view, partner)


# -- the link in the confirmation mail --------------------------------------------------------

def _link_partner(view: View) -> tuple[Partner | None, str]:
    """The partner whose current PayPal address the link confirms (None: expired, used, or for
    an address the account no longer has), and the token."""
    token = view.request.path_params["token"]
    purpose = passwords.token_purpose(view.db, token)
    if purpose is None or not purpose.startswith(passwords.PAYPAL_PREFIX):
        return None, token
    row_partner = passwords.find_reset_token(view.db, token, purpose=purpose)
    partner = view.db.get(Partner, row_partner.partner_id) if row_partner else None
    if (partner is None or not partner.paypal_email
            or passwords.paypal_purpose(partner.paypal_email) != purpose):
        return None, token
    return partner, token


def _expired(view: View) -> Response:
    return view.page("portal_message.html", title="Link expired",
                     message="This link was used already, has expired, or is for an address "
                             "that is no longer the account's PayPal address.")


def confirm_form(view: View) -> Response:
    """The page of the link: a button, so that a mail scanner opening links confirms nothing."""
    partner, token = _link_partner(view)
    if partner is None:
        return _expired(view)
    return view.page("portal_paypal_confirm.html", title="Confirm your PayPal address",
                     token=token, address=partner.paypal_email, program=partner.program)


def confirm(view: View) -> Response:
    partner, token = _link_partner(view)
    if partner is None or passwords.spend_token(view.db, token, passwords.paypal_purpose(
            partner.paypal_email or "")) is None:
        return _expired(view)
    address = partner.paypal_email or ""
    payee.confirm(view.db, partner, address, actor=actor_of(partner))
    return view.page("portal_message.html", title="PayPal address confirmed",
                     message=f"Thank you: {address} is confirmed, and payouts of the "
                             f"{partner.program} partner account go to it from now on.")
