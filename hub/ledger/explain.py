"""Why a commission line is what it is: its rule, the inputs, and the provider event behind it.

Everything comes from what was stored when the line was booked (the `rule` JSON of the line, see
`hub.programs.Draft` for the input names) and from the stored provider event, so an explanation
never re-runs a rule and never changes with later settings.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.db.models import Commission, InstallRecord, PaymentRecord, ProviderEvent
from hub.errors import NotFound
from hub.ledger import entries as ledger
from hub.money import format_money, format_rate
from hub.runtime import Hub

# The fields of a provider object that say what was paid, by whom, for what; anything else is
# shown only when a rule input names its value.
USED_FIELDS = ("id", "object", "customer", "customer_email", "amount", "amount_paid",
               "amount_refunded", "amount_due", "total", "tax", "currency", "charge", "invoice",
               "payment_intent", "subscription", "status", "billing_reason", "install_id",
               "product", "site", "partner_code", "customer_ref", "reason")


def explain_href(commission_id: str) -> str:
    return f"/api/v1/commissions/{commission_id}/explain"


def explain_commission(hub: Hub, session: Session, commission_id: str) -> dict[str, Any]:
    """The full explanation of one commission line (earning or reversal), as JSON."""
    line = session.get(Commission, commission_id)
    if line is None:
        raise NotFound(f"no commission {commission_id!r}")
    rule = dict(line.rule or {})
    original = session.get(Commission, line.reverses_id) if line.reverses_id else None
    return {
        **_line_json(line), "state": ledger.line_state(session, line),
        "sentence": rule.get("sentence", ""),
        "derivation": _derivation(hub, line, rule, original),
        "event": _event_json(session, line.event_id, rule.get("inputs") or {}),
        "payment": _payment_json(session, line.payment_id),
        "install": _install_json(session, line.install_id),
        "reverses": _summary(original) if original is not None else None,
        "reversed_by": [_summary(r) for r in session.scalars(
            select(Commission).where(Commission.reverses_id == line.id)
            .order_by(Commission.created_at, Commission.id))],
    }


def _line_json(line: Commission) -> dict[str, Any]:
    return {"id": line.id, "partner_id": line.partner_id, "program": line.program,
            "amount": line.amount, "currency": line.currency, "key": line.key,
            "earned_at": line.earned_at.isoformat(), "available_at": line.available_at.isoformat()}


def _summary(line: Commission) -> dict[str, Any]:
    """Enough of a related line to name it and follow the link to its own explanation."""
    return {"id": line.id, "amount": line.amount, "currency": line.currency,
            "sentence": (line.rule or {}).get("sentence", ""), "href": explain_href(line.id)}


def _derivation(hub: Hub, line: Commission, rule: dict[str, Any],
                original: Commission | None) -> dict[str, Any]:
    source = dict(original.rule or {}) if original is not None else rule
    inputs = dict(rule.get("inputs") or {})
    program = hub.program(line.program)
    stored_hash = source.get("settings_hash")
    return {"plugin": source.get("plugin"), "program": line.program, "rule": rule.get("rule"),
            "settings_hash": stored_hash,
            "settings_changed_since": (None if program is None or stored_hash is None
                                       else program.settings_hash != stored_hash),
            "inputs": inputs, "details": describe_inputs(inputs, line.currency)}


def describe_inputs(inputs: dict[str, Any], currency: str) -> list[str]:
    """Each conventional input (see `hub.programs.Draft`) in words, in a stable order."""
    out = []
    for name, phrase in _PHRASES:
        if name in inputs:
            try:
                out.append(phrase(inputs, currency))
            except (TypeError, ValueError, KeyError, ArithmeticError):
                out.append(f"{name}: {inputs[name]}")  # a plugin's own shape: shown as stored
    return out


def _money(key: str) -> Callable[[dict[str, Any], str], str]:
    return lambda inputs, currency: format_money(int(inputs[key]), currency)


def _rate(inputs: dict[str, Any], currency: str) -> str:
    from decimal import Decimal

    return f"rate {format_rate(Decimal(str(inputs['rate'])))}"


def _window(inputs: dict[str, Any], currency: str) -> str:
    w = inputs["window"]
    return (f"payment {int(w['payment'])} within the first {int(w['months'])} months "
            f"({str(w['start'])[:10]} to {str(w['end'])[:10]})")


def _tier(inputs: dict[str, Any], currency: str) -> str:
    t = inputs["tier"]
    limit = f", threshold {t['threshold']}" if t.get("threshold") is not None else ""
    return f"tier: {t['label']} ({t['count']} counted{limit})"


_PHRASES: list[tuple[str, Callable[[dict[str, Any], str], str]]] = [
    ("base", lambda i, c: f"base {format_money(int(i['base']), c)}"),
    ("rate", _rate),
    ("payment", lambda i, c: f"payment {i['payment']}"),
    ("payment_number", lambda i, c: f"the customer's payment number {int(i['payment_number'])}"),
    ("window", _window),
    ("plan", lambda i, c: f"plan {i['plan']}"),
    ("tier", _tier),
    ("bounty", lambda i, c: f"bounty {_money('bounty')(i, c)}"),
    ("install", lambda i, c: f"installation {i['install']}"),
    ("site", lambda i, c: f"site {i['site']}"),
    ("refunded", lambda i, c: f"refunded {format_money(int(i['refunded']), c)} of "
                              f"{format_money(int(i['gross']), c)}"),
    ("disputed", lambda i, c: f"disputed {format_money(int(i['disputed']), c)}"),
    ("reversed_total", lambda i, c: f"reversed in all: {format_money(int(i['reversed_total']), c)}"
                                    f" of {format_money(int(i['of']), c)}"),
]


def _event_json(session: Session, event_row_id: int | None,
                inputs: dict[str, Any]) -> dict[str, Any] | None:
    if event_row_id is None:
        return None
    event = session.get(ProviderEvent, event_row_id)
    if event is None:
        return None
    return {"provider": event.provider, "id": event.event_id, "type": event.type,
            "occurred_at": event.occurred_at.isoformat(),
            "received_at": event.received_at.isoformat(),
            "object": fields_used(event.payload, inputs)}


def fields_used(payload: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """The referenced object's identifying and money fields, plus any field whose value a rule
    input names (e.g. the invoice id), from a stored payload of any provider."""
    try:
        data = json.loads(payload)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    obj = _referenced_object(data)
    named = {v for v in _scalars(inputs) if isinstance(v, str)}
    out = {}
    for key, value in obj.items():
        value = value.get("id") if isinstance(value, dict) else value
        if isinstance(value, (str, int, float, bool)) and (key in USED_FIELDS or value in named):
            out[key] = value
    return out


def _referenced_object(data: dict[str, Any]) -> dict[str, Any]:
    """Stripe nests the object in ``data.object``, PayPal in ``resource``; pseudo-providers
    (installers) store the object itself."""
    nested = (data.get("data") or {}).get("object") if isinstance(data.get("data"), dict) else None
    for candidate in (nested, data.get("resource")):
        if isinstance(candidate, dict):
            return candidate
    return data


def _scalars(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _scalars(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _scalars(v)]
    return [] if value is None or isinstance(value, bool) else [value]


def _payment_json(session: Session, payment_id: int | None) -> dict[str, Any] | None:
    payment = session.get(PaymentRecord, payment_id) if payment_id is not None else None
    if payment is None:
        return None
    return {"provider": payment.provider, "ref": payment.ref, "charge_ref": payment.charge_ref,
            "amount": payment.amount, "gross_amount": payment.gross_amount,
            "currency": payment.currency, "occurred_at": payment.occurred_at.isoformat(),
            "subscription_ref": payment.subscription_ref, "plan": payment.plan}


def _install_json(session: Session, install_id: int | None) -> dict[str, Any] | None:
    install = session.get(InstallRecord, install_id) if install_id is not None else None
    if install is None:
        return None
    return {"install_id": install.install_id, "product": install.product, "site": install.site,
            "occurred_at": install.occurred_at.isoformat()}
