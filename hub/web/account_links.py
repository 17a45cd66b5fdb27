"""The set-password link a sign-up sends to an address that has an account in the program.

A Callbell ambassador (a customer enrolled automatically, with no password) who finds the
sign-up page gets a way in instead of a refusal, without the page telling anyone whether the
address has an account: the link goes by mail, to the account's own address, at most once per
`THROTTLE` (as "Forgot password?"), so the form cannot be used to flood a mailbox.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta

from sqlalchemy.orm import Session

from hub.attribution import passwords
from hub.db.models import Partner
from hub.notify import notices

THROTTLE = timedelta(minutes=5)


def mail_set_password_link(session: Session, partner_id: str,
                           statuses: Collection[str]) -> bool:
    """Mail the partner a one-hour link to choose a (new) password, if its status is one that
    may log in and no link went to it in the last `THROTTLE`; whether a mail was written."""
    partner = session.get(Partner, partner_id)
    if (partner is None or partner.status not in statuses
            or passwords.recently_sent(session, partner.id, THROTTLE)):
        return False
    token, expires = passwords.create_reset_token(session, partner.id,
                                                  valid_for=passwords.SELF_RESET_VALID_FOR)
    return notices.signup_with_account(session, partner, token, expires)
