"""Partners: creating memberships, codes, and the status machine (applied -> active ...)."""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from hub.attribution.emails import EMAIL_RE
from hub.clock import utcnow
from hub.db.audit import record_action
from hub.db.models import Customer, Link, Partner
from hub.db.upsert import insert_ignore
from hub.errors import Conflict, NotFound, Unprocessable
from hub.notify import notices
from hub.notify.outbox import emit
from hub.payouts.payee import METHODS, PAYPAL
from hub.programs import Program
from hub.runtime import Hub

CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,63}$")
TRANSITIONS = {"approve": ({"applied", "invited"}, "active"),
               "decline": ({"applied", "invited"}, "declined"),
               "suspend": ({"active"}, "suspended"),
               "reactivate": ({"suspended"}, "active")}


# No vowels or look-alikes: codes are read aloud and typed into installers.
CODE_ALPHABET = "bcdfghjkmnpqrstvwxz23456789"


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))


def derived_code(seed: str, length: int = 10) -> str:
    """A code that is a function of `seed`: an automatically enrolled customer gets the same
    code on every hub that sees the same events (a replay, another host)."""
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(CODE_ALPHABET[b % len(CODE_ALPHABET)] for b in digest[:length])


def enrolling_programs(hub: Hub) -> list[tuple[Program, str]]:
    """The programs that make every customer a referrer (`auto_enroll_kind`), with that kind."""
    found = ((program, hub.constant(program, "auto_enroll_kind"))
             for program in hub.programs.values())
    return [(program, kind) for program, kind in found if kind]


def self_signup_kind(hub: Hub, program: Program) -> str:
    """The kind a partner who signs itself up on the portal gets (`self_signup_kind`; default the
    program's first kind)."""
    return str(hub.constant(program, "self_signup_kind") or program.kinds[0])


def enroll_customer(hub: Hub, session: Session, customer: Customer) -> list[Partner]:
    """Memberships created now for `customer` in programs that make every customer a referrer
    (`auto_enroll_kind`); once per program and customer, also under concurrent deliveries."""
    if not customer.email or not EMAIL_RE.match(customer.email):
        return []  # a membership needs an address; a later customer.updated brings it
    created = []
    for program, kind in enrolling_programs(hub):
        seed = f"{program.name}:{customer.provider}:{customer.ref}"
        partner_id = enrolled_partner_id(program.name, customer)
        if insert_ignore(session, Partner, dict(
                id=partner_id, program=program.name, kind=kind, status="active",
                code=derived_code(seed), email=customer.email, name="",
                customer_ref=customer.ref, created_at=utcnow())):
            created.append(session.get(Partner, partner_id))
    members = [p for p in created if p is not None]
    for partner in members:
        notices.enrolled(session, partner)  # its way into the portal: no password yet
    return members


def enrolled_partner_id(program: str, customer: Customer) -> str:
    """The id of `customer`'s automatic membership of `program` (a function of both, so a
    concurrent or replayed enrolment finds the same row)."""
    seed = f"{program}:{customer.provider}:{customer.ref}"
    return "prt_" + hashlib.sha256(seed.encode()).hexdigest()[:16]


def create_partner(hub: Hub, session: Session, *, program: str, email: str, name: str = "",
                   kind: str | None = None, paypal_email: str | None = None,
                   code: str | None = None, invited: bool = False,
                   customer_ref: str | None = None, website: str | None = None,
                   password_hash: str | None = None, paypal_confirmed: bool = True,
                   payout_method: str = PAYPAL) -> Partner:
    """A new partner. A PayPal address given here counts as confirmed (the operator's API and
    admin set it); the portal's sign-up passes ``paypal_confirmed=False``, so the address waits
    for the link mailed to it (`hub.payouts.payee`)."""
    prog = hub.program(program)
    if prog is None:
        raise Unprocessable(f"unknown program {program!r}", code="unknown_program")
    kind = kind or prog.kinds[0]
    if kind not in prog.kinds:
        raise Unprocessable(f"kind must be one of {', '.join(prog.kinds)}", code="invalid_kind")
    if not EMAIL_RE.match(email):
        raise Unprocessable("email is not a valid address", code="invalid_email")
    if paypal_email and not EMAIL_RE.match(paypal_email):
        raise Unprocessable("paypal_email is not a valid address", code="invalid_email")
    if payout_method not in METHODS:
        raise Unprocessable(f"payout_method must be one of {', '.join(METHODS)}",
                            code="invalid_method")
    if code is not None and not CODE_RE.match(code):
        raise Unprocessable("code must be 3-64 letters, digits, '-' or '_'", code="invalid_code")
    if code is not None and (session.scalar(select(Partner.id).where(Partner.code == code))
                             or session.scalar(select(Link.id).where(Link.code == code))):
        raise Conflict(f"code {code!r} is taken", code="code_taken")
    existing = _member_with_email(session, program, email)
    if existing is not None:
        raise Conflict(f"{program} already has a partner with this e-mail ({existing})",
                       code="email_taken")
    status = initial_status(hub, prog, kind, invited)
    partner = Partner(program=program, kind=kind, status=status, code=code or new_code(),
                      email=email.strip(), name=name, paypal_email=paypal_email or None,
                      customer_ref=customer_ref, website=website, password_hash=password_hash,
                      payout_method=payout_method, created_at=utcnow())
    if paypal_email and paypal_confirmed:
        partner.paypal_confirmed_at = partner.created_at
    session.add(partner)
    session.flush()
    emit(session, "partner.created", partner.id, partner_json(partner))
    notices.partner_created(hub, session, partner, invited=invited)
    return partner


def initial_status(hub: Hub, program: Program, kind: str, invited: bool) -> str:
    """The status a new partner of `kind` starts in (`new_partner_status`; default active)."""
    return str(hub.first(program, "new_partner_status", partner_kind=kind, invited=invited)
               or "active")


def _member_with_email(session: Session, program: str, email: str) -> str | None:
    """The id of the program's partner with this e-mail (case-folded), if any. On PostgreSQL a
    transaction lock on (program, e-mail) makes two concurrent creations see each other, so the
    second one is the 409 too (SQLite has one writer at a time)."""
    folded = email.strip().lower()
    if session.get_bind().dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(f"partner\n{program}\n{folded}".encode())
                             .digest()[:8], "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    return session.scalar(select(Partner.id).where(  # type: ignore[no-any-return]
        Partner.program == program, func.lower(Partner.email) == folded).limit(1))


def get_partner(session: Session, partner_id: str) -> Partner:
    partner = session.get(Partner, partner_id)
    if partner is None:
        raise NotFound(f"no partner {partner_id!r}")
    return partner


def transition(session: Session, partner_id: str, action: str, actor: str) -> Partner:
    partner = get_partner(session, partner_id)
    allowed, target = TRANSITIONS[action]
    if partner.status not in allowed:
        raise Conflict(f"cannot {action} a partner that is {partner.status}", code="invalid_state")
    partner.status = target
    record_action(session, actor, f"partner.{action}", partner.id)
    notices.partner_decided(session, partner, action)
    return partner


def accept_agreement(session: Session, partner_id: str, actor: str, *,
                     hub: Hub | None = None) -> Partner:
    """Record the acceptance (audited) with the program's current `agreement_version`; once per
    version: accepting again what was accepted changes nothing."""
    partner = get_partner(session, partner_id)
    program = hub.program(partner.program) if hub is not None else None
    version = str(getattr(program.settings, "agreement_version", "") if program else "") or None
    if partner.agreement_accepted_at is None or (version and partner.agreement_version != version):
        partner.agreement_accepted_at = utcnow()
        partner.agreement_version = version
        record_action(session, actor, "partner.agreement", partner.id, version=version)
    return partner


def partner_json(partner: Partner, **extra: Any) -> dict[str, Any]:
    return {"id": partner.id, "code": partner.code, "program": partner.program,
            "kind": partner.kind, "status": partner.status, "email": partner.email,
            "name": partner.name, "paypal_email": partner.paypal_email,
            "paypal_confirmed_at": _iso(partner.paypal_confirmed_at),
            "payout_method": partner.payout_method,
            "agreement_accepted_at": _iso(partner.agreement_accepted_at),
            "agreement_version": partner.agreement_version,
            "created_at": _iso(partner.created_at), **extra}


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
