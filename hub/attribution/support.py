"""Who supports a customer, and how partners reach their program.

Some programs (OdooPBX) send a customer's support request to the partner who brought the customer,
when the partner's kind takes support (`KindProfile.receives_support`); everyone else is
supported by the operator, at the program's support contact (`ProgramSettings.support_email` ...,
falling back to `[email] operator`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.db.models import Customer, Partner, Referral
from hub.errors import NotFound, Unprocessable
from hub.programs import Program
from hub.runtime import Hub


def program_contacts(hub: Hub, program: Program | None) -> dict[str, str]:
    """The program's contact keys that are set, and the operator's address (`operator`) when
    the program names neither address, so partners always have somewhere to write."""
    settings = program.settings if program is not None else None
    found = {key: str(getattr(settings, key, "") or "")
             for key in ("contact_email", "support_email", "support_url")}
    contacts = {key: value for key, value in found.items() if value}
    if not (contacts.get("contact_email") or contacts.get("support_email")):
        if hub.config.email.operator:
            contacts["operator"] = hub.config.email.operator
    return contacts


def operator_support(hub: Hub, program: Program | None) -> dict[str, Any]:
    """The operator's support contact for `program`'s customers."""
    contacts = program_contacts(hub, program)
    email = (contacts.get("support_email") or contacts.get("contact_email")
             or hub.config.email.operator or None)
    return {"routed_to": "operator", "program": program.name if program else None,
            "partner_id": None, "name": None, "email": email,
            "website": contacts.get("support_url")}


def partner_support(partner: Partner) -> dict[str, Any]:
    """A supporting partner's public contact (nothing about its money or customers)."""
    return {"routed_to": "partner", "program": partner.program, "partner_id": partner.id,
            "name": partner.name or None, "email": partner.email, "website": partner.website}


def supports_customers(hub: Hub, program: Program | None, partner_kind: str) -> bool:
    """Whether partners of this kind take their customers' support requests."""
    return program is not None and hub.kind_profile(program, partner_kind).receives_support


def support_for(hub: Hub, session: Session, provider: str, customer_ref: str,
                program_name: str | None = None) -> dict[str, Any]:
    """Who supports the customer (`provider`, `customer_ref`), in `program_name` or any program:
    the referring partner when it is active, not the customer itself, and of a kind that receives
    support; else the operator, at the contact of the customer's program (of `program_name`, or
    of the hub's only program; else `[email] operator`)."""
    if provider not in hub.registry.connectors:
        known = ", ".join(sorted(hub.registry.connectors))
        raise Unprocessable(f"provider must be one of {known}", code="invalid_field")
    if program_name and program_name not in hub.programs:
        raise Unprocessable("program names no running program", code="invalid_field")
    customer = session.scalar(select(Customer).where(Customer.provider == provider,
                                                     Customer.ref == customer_ref))
    if customer is None:
        raise NotFound("no such customer")
    query = (select(Referral, Partner).join(Partner, Partner.id == Referral.partner_id)
             .where(Referral.customer_id == customer.id).order_by(Referral.id))
    if program_name:
        query = query.where(Referral.program == program_name)
    rows = session.execute(query).all()
    for referral, partner in rows:
        if (partner.status == "active" and not referral.self_referral
                and supports_customers(hub, hub.program(referral.program), partner.kind)):
            return partner_support(partner)
    if rows:
        program_name = rows[0][0].program
    elif not program_name and len(hub.programs) == 1:
        program_name = next(iter(hub.programs))
    return operator_support(hub, hub.program(program_name) if program_name else None)
