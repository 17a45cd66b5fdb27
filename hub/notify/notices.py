"""Which mail the hub sends for which cause, and the key that makes it one mail per cause.

Called where the cause is written (a commission booked, a payout moved, a partner created or
decided), in the same transaction, next to the outbox's webhook event for the same cause; the
mail itself goes out after the commit (`hub.notify.mail`). Partners' mails go to the partner's
e-mail; the operators' go to `[email] operator` (none when it is unset).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.attribution.passwords import create_reset_token
from hub.clock import utcnow
from hub.db.models import Commission, Mail, Partner, Payout
from hub.money import format_money
from hub.notify.mail import queue_mail, queue_mails
from hub.programs import Program
from hub.runtime import Hub

# A commission earned longer ago than this is history (a replayed export, a backfill), not news:
# it is booked without a mail.
COMMISSION_NEWS = timedelta(days=7)
# How long the link an automatically enrolled customer gets to choose its password stays valid
# (after that, "Forgot password?" sends a new one).
ENROLMENT_LINK_VALID_FOR = timedelta(days=7)
# The template for a payout entering a status; withdrawal decisions are told apart by where the
# payout came from (see `payout_template`).
PAYOUT_TEMPLATES = {"sent": "payout_sent", "paid": "payout_paid", "failed": "payout_failed",
                    "returned": "payout_returned", "rejected": "withdrawal_rejected"}


def about(partner: Partner) -> dict[str, Any]:
    """What every partner mail may say about its recipient."""
    return {"name": partner.name or "", "program": partner.program, "code": partner.code,
            "email": partner.email, "partner_id": partner.id,
            "has_password": partner.password_hash is not None}


def to_operator(hub: Hub, session: Session, template: str, key: str,
                context: dict[str, Any]) -> bool:
    return queue_mail(session, template=template, to=hub.config.email.operator, key=key,
                      context=context)


# -- partners --------------------------------------------------------------------------------

def partner_created(hub: Hub, session: Session, partner: Partner, *, invited: bool) -> None:
    """Welcome an active partner; tell the operator about an application. (An invitation is
    mailed by whoever invites, with the link to choose a password.)"""
    if partner.status == "applied":
        to_operator(hub, session, "operator_new_application", f"partner:{partner.id}:applied",
                    {**about(partner), "website": partner.website or ""})
    elif partner.status == "active" and not invited:
        queue_mail(session, template="welcome", to=partner.email,
                   key=f"partner:{partner.id}:welcome", context=about(partner))


def partner_decided(session: Session, partner: Partner, action: str) -> None:
    """An application (or invitation) approved or declined by the operator."""
    template = {"approve": "approved", "decline": "declined"}.get(action)
    if template:
        queue_mail(session, template=template, to=partner.email,
                   key=f"partner:{partner.id}:{template}", context=about(partner))


def invitation(session: Session, partner: Partner, token: str, expires: datetime) -> bool:
    return queue_mail(session, template="invitation", to=partner.email,
                      key=f"partner:{partner.id}:invitation:{_digest(token)}",
                      context={**about(partner), "token": token, "expires": _when(expires),
                               "active": partner.status == "active"})


def email_verification(session: Session, partner: Partner, token: str, expires: datetime) -> bool:
    return queue_mail(session, template="verify_email", to=partner.email,
                      key=f"partner:{partner.id}:verify:{_digest(token)}",
                      context={**about(partner), "token": token, "expires": _when(expires)})


def password_reset(session: Session, partner: Partner, token: str, expires: datetime) -> bool:
    return queue_mail(session, template="password_reset", to=partner.email,
                      key=f"partner:{partner.id}:reset:{_digest(token)}",
                      context={**about(partner), "token": token, "expires": _when(expires)})


def enrolled(session: Session, partner: Partner) -> bool:
    """A customer made a partner automatically (e.g. a Callbell ambassador) has no password:
    mail it a one-time link to choose one, once per membership (key ``enrolment:<id>``; no
    token is made when that mail exists already)."""
    key = f"enrolment:{partner.id}"
    if session.scalar(select(Mail.id).where(Mail.key == key)) is not None:
        return False
    token, expires = create_reset_token(session, partner.id,
                                        valid_for=ENROLMENT_LINK_VALID_FOR)
    return _set_password(session, partner, key, token, expires, "enrolment")


def signup_with_account(session: Session, partner: Partner, token: str,
                        expires: datetime) -> bool:
    """A sign-up named the address of an existing account: the account's owner gets the link
    to choose a password (the page the sign-up showed says nothing either way)."""
    return _set_password(session, partner, f"partner:{partner.id}:signup:{_digest(token)}",
                         token, expires, "signup")


def _set_password(session: Session, partner: Partner, key: str, token: str, expires: datetime,
                  cause: str) -> bool:
    return queue_mail(session, template="set_password", to=partner.email, key=key,
                      context={**about(partner), "token": token, "expires": _when(expires),
                               "cause": cause})


def payee_changed(session: Session, partner: Partner, old_payee: str | None,
                  new_payee: str) -> int:
    """The payout address changed: tell the old address (and the account's, if it differs), so
    a stolen session cannot quietly redirect the partner's money. Call it where the change is
    saved, with the address as it was before. Returns how many mails were written."""
    now = utcnow()
    cause = _digest(f"{old_payee}>{new_payee}@{now.isoformat()}")
    context = {**about(partner), "new_payee": new_payee, "changed_at": _when(now)}
    recipients = dict.fromkeys(a for a in (old_payee, partner.email) if a)
    return sum(queue_mail(session, template="payee_changed", to=address,
                          key=f"partner:{partner.id}:payee:{cause}:{_digest(address)}",
                          context=context) for address in recipients)


def paypal_confirmation(session: Session, partner: Partner, token: str,
                        expires: datetime) -> bool:
    """The one-time link that confirms the partner's new PayPal address, mailed to that address
    (whoever reads it there owns it); no payout goes to it before."""
    address = partner.paypal_email or ""
    return queue_mail(session, template="paypal_confirm", to=address,
                      key=f"paypal-confirm:{partner.id}:{_digest(address + token)}",
                      context={**about(partner), "paypal_email": address, "token": token,
                               "expires": _when(expires)})


def paid_by_hand(hub: Hub, session: Session, partner: Partner, actor: str) -> bool:
    """A partner chose "I have no PayPal account": the operator is to agree with it how and when
    it is paid (it is on the manual list from now on)."""
    return to_operator(hub, session, "operator_paid_by_hand",
                       f"partner:{partner.id}:manual:{_digest(utcnow().isoformat())}",
                       {**about(partner), "actor": actor,
                        "billing_details": partner.billing_details or ""})


# -- commissions -----------------------------------------------------------------------------

def commission_earned(session: Session, line: Commission, program: Program) -> None:
    """One booked line (the per-event path). The partner is read only for news."""
    if line.amount <= 0 or line.reverses_id is not None or not _recent(line.earned_at):
        return
    partner = session.get(Partner, line.partner_id)
    if partner is not None and partner.mail_commissions:
        _commission_mail(session, partner, line.id, format_money(
            line.amount, line.currency, locale_of(program)), line.rule)


def commissions_earned(hub: Hub, session: Session, lines: Iterable[dict[str, Any]],
                       partners: dict[str, Partner] | None = None) -> None:
    """Many booked lines (group commit, replay): the partners not in `partners` (those the
    caller read already) are read with one query, and the mails written with one."""
    queue_mails(session, commission_mails(hub, session, lines, partners))


def commission_mails(hub: Hub, session: Session, lines: Iterable[dict[str, Any]],
                     partners: dict[str, Partner] | None = None
                     ) -> list[tuple[str, str, str, dict[str, Any]]]:
    """The mails `commissions_earned` queues (for a caller that writes them together with
    other rows: `hub.notify.mail.mail_rows`)."""
    lines = [line for line in lines if line["amount"] > 0 and not line.get("reverses_id")
             and _recent(line["earned_at"])]
    if not lines:
        return []
    partners = dict(partners or {})
    ids = sorted({line["partner_id"] for line in lines} - set(partners))
    if ids:
        partners.update((p.id, p) for p in session.scalars(
            select(Partner).where(Partner.id.in_(ids))))
    mails = []
    for line in lines:
        partner = partners.get(line["partner_id"])
        if partner is not None and partner.mail_commissions:
            program = hub.program(line["program"])
            amount = format_money(line["amount"], line["currency"],
                                  locale_of(program) if program else "en")
            mails.append(_commission_mail_of(partner, line["id"], amount, line.get("rule")))
    return mails


def _recent(earned_at: datetime) -> bool:
    return earned_at >= utcnow() - COMMISSION_NEWS


def locale_of(program: Program) -> str:
    """How the program writes amounts (its `locale` setting, as the portal does)."""
    return str(getattr(program.settings, "locale", "en"))


def _commission_mail(session: Session, partner: Partner, line_id: str, amount: str,
                     rule: Any) -> None:
    template, to, key, context = _commission_mail_of(partner, line_id, amount, rule)
    queue_mail(session, template=template, to=to, key=key, context=context)


def _commission_mail_of(partner: Partner, line_id: str, amount: str, rule: Any
                        ) -> tuple[str, str, str, dict[str, Any]]:
    sentence = rule.get("sentence", "") if isinstance(rule, dict) else ""
    return ("commission_earned", partner.email, f"commission:{line_id}",
            {**about(partner), "amount": amount, "sentence": sentence, "commission_id": line_id})


# -- payouts ---------------------------------------------------------------------------------

def payout_template(previous: str, status: str) -> str | None:
    """The mail for a payout moving from `previous` to `status`, if any: a requested withdrawal
    approved (whether a person or a gateway pays it next) or rejected; a payout sent, paid,
    failed or returned."""
    if previous == "requested" and status in ("approved", "queued"):
        return "withdrawal_approved"
    if status == "rejected" and previous not in ("requested", "approved"):
        return "payout_failed"  # a dead-lettered payout the operator gave up on
    return PAYOUT_TEMPLATES.get(status)


def payout_moved(session: Session, payout: Payout, previous: str) -> None:
    """Tell the partner about the payout's new status (`payouts.states.transition_many`)."""
    template = payout_template(previous, payout.status)
    partner = session.get(Partner, payout.partner_id) if template else None
    if template and partner is not None:
        queue_mail(session, template=template, to=partner.email,
                   key=f"payout:{payout.id}:{payout.status}:{payout.attempts}",
                   context={**about(partner), **_payout(payout)})


def withdrawal_requested(hub: Hub, session: Session, partner: Partner, payout: Payout) -> None:
    to_operator(hub, session, "operator_withdrawal_request", f"payout:{payout.id}:requested",
                {**about(partner), **_payout(payout)})


def payouts_dead_lettered(hub: Hub, session: Session, payouts: Iterable[Payout]) -> None:
    """The send job gave up: the operator must look (the money stays reserved)."""
    for payout in payouts:
        partner = session.get(Partner, payout.partner_id)
        to_operator(hub, session, "operator_payout_dead_letter",
                    f"payout:{payout.id}:dead_letter:{payout.attempts}",
                    {**(about(partner) if partner else {"email": "", "program": ""}),
                     **_payout(payout)})


def _payout(payout: Payout) -> dict[str, Any]:
    return {"payout_id": payout.id, "amount": format_money(payout.amount, payout.currency),
            "method": payout.method, "receiver": payout.receiver or "",
            "reference": payout.reference or "", "reason": payout.failure_reason or "",
            "dead_letter": bool(payout.dead_letter)}


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")
