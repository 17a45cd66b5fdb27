"""Partner passwords (argon2) and one-time links: a password reset (sent by the operator or asked
for with "Forgot password?"), the e-mail verification of a self sign-up, and the confirmation of
a PayPal address (its purpose names the address: `paypal_purpose`).

A reset token is 32 random bytes shown once in a link; only its SHA-256 is stored, with an expiry,
and using it marks it used, so a leaked database or a replayed link sets no password.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hub.clock import utcnow
from hub.db.models import Partner, PasswordResetToken
from hub.errors import Unprocessable

HASHER = PasswordHasher()
RESET_VALID_FOR = timedelta(hours=72)
SELF_RESET_VALID_FOR = timedelta(hours=1)  # a "Forgot password?" link: short, it went by mail
VERIFY_VALID_FOR = timedelta(days=7)
PAYPAL_VALID_FOR = timedelta(days=7)
RESET, VERIFY = "reset", "verify"
PAYPAL_PREFIX = "pp:"
MIN_LENGTH = 10


@functools.lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """Verified against when no partner matches, so a wrong email costs as long as a wrong
    password. Made on first use: hashing takes argon2's 64 MiB, which at import was most of a
    webhook-only server's peak memory."""
    return HASHER.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    check_strength(password)
    return HASHER.hash(password)


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise Unprocessable(f"a password needs at least {MIN_LENGTH} characters",
                            code="weak_password")


def verify_password(stored: str | None, password: str) -> bool:
    try:
        return HASHER.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_reset_token(session: Session, partner_id: str, now: datetime | None = None, *,
                       valid_for: timedelta = RESET_VALID_FOR,
                       purpose: str = RESET) -> tuple[str, datetime]:
    """A new token for the partner (earlier unused ones stay valid until they expire)."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    expires = now + valid_for
    session.add(PasswordResetToken(partner_id=partner_id, token_hash=_digest(token),
                                   purpose=purpose, expires_at=expires, created_at=now))
    return token, expires


def paypal_purpose(address: str) -> str:
    """The purpose of a link that confirms `address` for PayPal payouts: a link mailed for one
    address confirms no other (a digest, to fit the column)."""
    return PAYPAL_PREFIX + hashlib.sha256(address.strip().lower().encode()).hexdigest()[:12]


def recently_sent(session: Session, partner_id: str, within: timedelta,
                  purpose: str = RESET) -> bool:
    """Whether a token of `purpose` was made for the partner in the last `within` (so "Forgot
    password?" or "Send the PayPal link again" cannot be used to flood someone's mailbox)."""
    return session.scalar(select(PasswordResetToken.id).where(
        PasswordResetToken.partner_id == partner_id, PasswordResetToken.purpose == purpose,
        PasswordResetToken.created_at > utcnow() - within).limit(1)) is not None


def find_reset_token(session: Session, token: str, now: datetime | None = None,
                     purpose: str = RESET) -> PasswordResetToken | None:
    """The valid (unused, unexpired) token of that purpose: a verification link sets no
    password."""
    row = session.scalars(select(PasswordResetToken).where(
        PasswordResetToken.token_hash == _digest(token),
        PasswordResetToken.purpose == purpose)).first()
    if row is None or row.used_at is not None or row.expires_at <= (now or utcnow()):
        return None
    return row


def token_purpose(session: Session, token: str) -> str | None:
    """The purpose of a token that is still valid, whatever it is; None for an unknown, used or
    expired one."""
    row = session.scalars(select(PasswordResetToken).where(
        PasswordResetToken.token_hash == _digest(token))).first()
    if row is None or row.used_at is not None or row.expires_at <= utcnow():
        return None
    return row.purpose


def use_reset_token(session: Session, token: str, password: str) -> Partner | None:
    """Set the partner's password from a valid token and spend the token; None if invalid.

    The UPDATE ... WHERE used_at IS NULL makes two concurrent uses spend it once."""
    row = find_reset_token(session, token)
    if row is None:
        return None
    new_hash = hash_password(password)
    spent = session.execute(update(PasswordResetToken).where(
        PasswordResetToken.id == row.id, PasswordResetToken.used_at.is_(None))
        .values(used_at=utcnow()))
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        return None
    partner = session.get(Partner, row.partner_id)
    if partner is not None:
        partner.password_hash = new_hash
    return partner


def spend_token(session: Session, token: str, purpose: str) -> Partner | None:
    """Use a valid token once (whoever spends it first); its partner, or None."""
    row = find_reset_token(session, token, purpose=purpose)
    if row is None:
        return None
    spent = session.execute(update(PasswordResetToken).where(
        PasswordResetToken.id == row.id, PasswordResetToken.used_at.is_(None))
        .values(used_at=utcnow()))
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return session.get(Partner, row.partner_id)
