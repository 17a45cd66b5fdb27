"""Which partner, in which program, since when and from which source, a customer belongs to.

Programs never look this up themselves: the core hands them the `Referral`. The first
attribution that reaches a customer wins in each program (a unique key makes that hold under
races too); only an operator reassigns.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hub.attribution.emails import email_match
from hub.db.models import Customer, Partner, Referral
from hub.db.upsert import insert_ignore, insert_ignore_row
from hub.runtime import Hub

SOURCES = ("link", "code", "widget", "install", "manual")


def ensure_customer(session: Session, provider: str, ref: str, at: datetime, *,
                    email: str | None = None, partner_code: str | None = None,
                    install_id: str | None = None) -> Customer:
    """The customer row for (provider, ref), created on first sight; known details are kept and
    missing ones filled in from later facts."""
    # Read first: almost every fact is about a customer the hub knows (one statement, no write).
    customer = _customer_row(session, provider, ref)
    if customer is None:
        customer = insert_ignore_row(session, Customer, dict(
            provider=provider, ref=ref, email=email, partner_code=partner_code,
            install_id=install_id, first_seen_at=at))
        if customer is not None:
            if EVENT_CACHE in session.info:
                session.info[EVENT_CACHE][("referrals", customer.id)] = []  # new: none yet
            return customer  # new: it holds exactly these details
        customer = _customer_row(session, provider, ref)  # a concurrent delivery created it
        assert customer is not None
    changes: dict[str, Any] = {k: v for k, v in (("email", email), ("partner_code", partner_code),
                                 ("install_id", install_id))
               if v and getattr(customer, k) is None}
    if at < customer.first_seen_at:
        changes["first_seen_at"] = at
    if changes:
        session.execute(update(Customer).where(Customer.id == customer.id).values(**changes))
        session.refresh(customer)
    return customer


def _customer_row(session: Session, provider: str, ref: str) -> Customer | None:
    where = (Customer.provider == provider, Customer.ref == ref)
    cache = session.info.get(EVENT_CACHE)
    if cache is None:
        return session.scalars(select(Customer).where(*where)).first()
    # Applying an event: read the customer's referrals with it (settling a payment needs them).
    rows = session.execute(select(Customer, Referral, Partner)
                           .outerjoin(Referral, Referral.customer_id == Customer.id)
                           .outerjoin(Partner, Partner.id == Referral.partner_id)
                           .where(*where)).all()
    if not rows:
        return None
    customer = rows[0][0]
    cache.setdefault(("referrals", customer.id),
                     [(r, p) for _, r, p in rows if r is not None and p is not None])
    return customer  # type: ignore[no-any-return]


def partner_by_code(session: Session, code: str) -> Partner | None:
    return session.scalars(select(Partner).where(Partner.code == code.strip())).first()


def can_attribute(hub: Hub, partner: Partner) -> bool:
    """A partner's links credit anyone only while it is active and has met its program's
    requirements (e.g. an accepted agreement)."""
    program = hub.program(partner.program)
    if program is None or partner.status != "active":
        return False
    return not missing_requirements(hub, partner)


def missing_requirements(hub: Hub, partner: Partner, *, current: bool = False) -> list[str]:
    """What the partner still has to do before its links credit anyone (``["agreement"]``).

    With `current`, an acceptance of another version than the program's `agreement_version` is
    missing too: the portal asks again, while the links keep crediting on the earlier
    acceptance (a new text must not silently cut a partner's income)."""
    program = hub.program(partner.program)
    if program is None or not agreement_required(hub, program):
        return []
    if partner.agreement_accepted_at is None:
        return ["agreement"]
    version = getattr(program.settings, "agreement_version", "")
    return ["agreement"] if current and version and partner.agreement_version != version else []


def agreement_required(hub: Hub, program: Any) -> bool:
    """Whether the program's partners accept an agreement: its plugin requires one
    (`link_requirements`), or the operator set its text or URL (`agreement_text`/`_url`)."""
    settings = program.settings
    if getattr(settings, "agreement_text", "") or getattr(settings, "agreement_url", ""):
        return True
    return "agreement" in hub.constant(program, "link_requirements", many=True)


def self_referral_reason(partner: Partner, customer: Customer) -> str | None:
    """Why the customer looks like the partner itself (flagged for the operator's review), or
    None. Addresses are compared by the mailbox they reach (`canonical_email`)."""
    match = email_match(partner.email, customer.email)
    if match == "same":
        return "same email as the partner"
    if match == "look-alike":
        return "look-alike of the partner's email (same mailbox)"
    if partner.customer_ref and partner.customer_ref == customer.ref:
        return "the partner's own customer account"
    return None


def install_self_referral(partner: Partner, install: Any) -> str | None:
    """The partner's own installation: its own customer account, or a site on its website."""
    if install.customer_ref and partner.customer_ref == install.customer_ref:
        return "the partner's own installation"
    if install.site and partner.website and _host(install.site) == _host(partner.website):
        return "an installation on the partner's own website"
    return None


def _host(value: str) -> str:
    from urllib.parse import urlsplit

    host = urlsplit(value if "//" in value else f"//{value}").hostname or ""
    return host.lower().removeprefix("www.")


def attribute(hub: Hub, session: Session, customer: Customer, partner: Partner, *, source: str,
              at: datetime, event_id: int | None = None, click_id: str | None = None,
              link_code: str | None = None, flag: str | None = None) -> Referral | None:
    """Attribute `customer` to `partner` unless the program already has it. Returns the new
    referral, or None when nothing changed. `flag` marks a self-referral found by the caller."""
    if not can_attribute(hub, partner):
        return None
    if EVENT_CACHE in session.info and any(
            r.program == partner.program for r, _ in referrals_of(session, customer.id)):
        return None  # the program has it already: the insert below would be a no-op (and the
        # referrals read here are the ones settling the payment reads next)
    reason = self_referral_reason(partner, customer) or flag
    inserted = insert_ignore(session, Referral, dict(
        program=partner.program, partner_id=partner.id, customer_id=customer.id, source=source,
        attributed_at=at, click_id=click_id, link_code=link_code, self_referral=reason is not None,
        flag_reason=reason, event_id=event_id))
    if not inserted:
        return None
    forget_cached(session, ("referrals", customer.id))
    return session.get(Referral, inserted)


def claim_by_code(hub: Hub, session: Session, customer: Customer, code: str, *, source: str,
                  at: datetime, event_id: int | None = None,
                  install: Any = None) -> Referral | None:
    partner = _known_partner(session, customer.id, code) or partner_by_code(session, code)
    if partner is None:
        return None
    flag = install_self_referral(partner, install) if install is not None else None
    return attribute(hub, session, customer, partner, source=source, at=at, event_id=event_id,
                     flag=flag)


def _known_partner(session: Session, customer_id: int, code: str) -> Partner | None:
    """The partner with `code` when it already refers the customer (a renewal naming the code
    that attributed it): no lookup needed."""
    if EVENT_CACHE not in session.info:
        return None
    code = code.strip()
    return next((p for _, p in referrals_of(session, customer_id) if p.code == code), None)


def referrals_of(session: Session, customer_id: int) -> list[tuple[Referral, Partner]]:
    def load() -> list[tuple[Referral, Partner]]:
        rows = session.execute(select(Referral, Partner)
                               .join(Partner, Partner.id == Referral.partner_id)
                               .where(Referral.customer_id == customer_id)).all()
        return [(r, p) for r, p in rows]

    return event_cached(session, ("referrals", customer_id), load)  # type: ignore[no-any-return]


# While one provider event is applied (`hub.ingest.events.ingest` sets this up and removes it), what
# several steps ask about a customer (its referrals, its payments) is read once. The steps that
# change those rows (`attribute`, a new payment) forget the customer's entry when they do.
EVENT_CACHE = "hub_event_cache"


def event_cached(session: Session, key: tuple[str, Any], load: Any) -> Any:
    cache = session.info.get(EVENT_CACHE)
    if cache is None:
        return load()
    if key not in cache:
        cache[key] = load()
    return cache[key]


def forget_cached(session: Session, key: tuple[str, Any]) -> None:
    session.info.get(EVENT_CACHE, {}).pop(key, None)


def is_attributed(session: Session, provider: str, customer_ref: str) -> bool:
    """True when the hub already knows who referred this customer, or holds a code for it."""
    row = session.execute(select(Customer.id, Customer.partner_code)
                          .where(Customer.provider == provider,
                                 Customer.ref == customer_ref)).first()
    if row is None:
        return False
    if row.partner_code:
        return True
    return (session.scalar(select(Referral.id).where(Referral.customer_id == row.id).limit(1))
            is not None)
