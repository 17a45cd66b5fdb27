"""Stripe in: signed webhooks become normalised facts; customers are looked up when needed.

Everything Stripe-specific stops here. Every API version from 2023-10-16 on is read (see
`connectors.stripe_versions`): before 2025-03-31.basil an invoice names its charge and payment
intent; from basil on it names neither, and what paid it arrives as `invoice_payment.paid` (or,
with an API key, is asked of Stripe's invoice payments list), stored as a `link` so that refunds
and disputes, which name only the charge and the intent, find the invoice they reverse.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import stripe
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from connectors.stripe_trigger import add_trigger_command
from connectors.stripe_versions import invoice_names_payment
from hub import hookimpl
from hub.api.http import apply_verified_event, error_response, hub_of, read_body
from hub.attribution.customers import is_attributed
from hub.clock import from_timestamp
from hub.errors import BadRequest, BadSignature, HTTPError
from hub.facts import (
    AttributionClaimed,
    CouponApplied,
    CustomerSeen,
    PaymentAdjusted,
    PaymentFailed,
    PaymentSucceeded,
    SubscriptionChanged,
    well_typed,
)
from hub.ingest.apply import linked_refs
from hub.ingest.events import Incoming, ingest, looked_up
from hub.ledger.reversals import LINK
from hub.money import minor_units
from hub.registry import Connector
from hub.runtime import Hub

log = logging.getLogger(__name__)
PROVIDER = "stripe"

STATUS = {"trialing": "trial", "active": "active", "past_due": "past_due", "unpaid": "past_due",
          "canceled": "cancelled", "incomplete_expired": "cancelled", "paused": "past_due"}


def _id(value: Any) -> str | None:
    """Stripe fields hold either an id or the expanded object."""
    if isinstance(value, dict):
        return value.get("id")
    return value or None


def _metadata(*objects: Any) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for obj in objects:
        if isinstance(obj, dict) and isinstance(obj.get("metadata"), dict):
            merged.update({k: v for k, v in obj["metadata"].items() if v})
    return merged


def plan_of(price: dict[str, Any] | None) -> str | None:
    """The plan name: the price's lookup_key, else price or product metadata.plan."""
    if not isinstance(price, dict):
        return None
    product = price.get("product") if isinstance(price.get("product"), dict) else {}
    return price.get("lookup_key") or _metadata(product, price).get("plan")


def _invoice_subscription(invoice: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    parent = invoice.get("parent") or {}
    details = parent.get("subscription_details") or invoice.get("subscription_details") or {}
    sub = _id(details.get("subscription")) or _id(invoice.get("subscription"))
    meta = dict(details.get("metadata") or {})
    if isinstance(invoice.get("subscription"), dict):
        meta = {**_metadata(invoice["subscription"]), **meta}
    return sub, meta


def _invoice_plan(invoice: dict[str, Any]) -> str | None:
    for line in (invoice.get("lines") or {}).get("data") or []:
        price = line.get("price") or ((line.get("pricing") or {}).get("price_details")
                                      or {}).get("price")
        plan = plan_of(price) if isinstance(price, dict) else None
        if plan:
            return plan
    return None


def _invoice_intent(invoice: dict[str, Any]) -> str | None:
    if invoice.get("payment_intent"):
        return _id(invoice["payment_intent"])
    for item in (invoice.get("payments") or {}).get("data") or []:
        intent = _id((item.get("payment") or {}).get("payment_intent"))
        if intent:
            return intent
    return None


def _invoice_tax(invoice: dict[str, Any]) -> int:
    if invoice.get("tax") is not None:
        return minor_units(invoice["tax"], "tax")
    return sum(minor_units(t.get("amount"), "tax") for t in invoice.get("total_taxes") or [])


def _discount_codes(obj: dict[str, Any]) -> tuple[str, ...]:
    """Every coupon id, promotion-code id and promotion code on an object: the legacy single
    `discount`, the `discounts` list (ids or expanded Discount objects, whose coupon sits at
    `coupon` or, in newer API versions, `source.coupon`), and Checkout's `{coupon,
    promotion_code}` entries. Bare discount ids (``di_...``) say nothing and are skipped."""
    entries = [obj.get("discount")] + list(obj.get("discounts") or [])
    codes: list[str] = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        source: dict[str, Any] = entry["source"] if isinstance(entry.get("source"), dict) else {}
        for value in (entry.get("coupon"), source.get("coupon"), entry.get("promotion_code")):
            codes.extend(_code_strings(value))
    return tuple(dict.fromkeys(codes))


def _code_strings(value: Any) -> list[str]:
    if isinstance(value, str) and value:
        return [value]
    if isinstance(value, dict):
        return [v for v in (value.get("id"), value.get("code")) if isinstance(v, str) and v]
    return []


def _coupon_fact(obj: dict[str, Any], customer: str | None, at: Any,
                 email: str | None = None) -> list[Any]:
    codes = _discount_codes(obj)
    if not codes or not customer:
        return []
    return [CouponApplied(provider=PROVIDER, customer_ref=customer, codes=codes, occurred_at=at,
                          email=email)]


def _invoice_paid(event: dict[str, Any], obj: dict[str, Any], at: Any) -> list[Any]:
    sub, sub_meta = _invoice_subscription(obj)
    meta = {**_metadata(obj), **sub_meta}
    paid_at = (obj.get("status_transitions") or {}).get("paid_at")
    gross = minor_units(obj.get("amount_paid"), "amount_paid")
    customer = _id(obj.get("customer"))
    if not customer or gross <= 0:
        return []
    coupons = _coupon_fact(obj, customer, at, obj.get("customer_email"))
    return coupons + [PaymentSucceeded(
        provider=PROVIDER, payment_ref=obj["id"], customer_ref=customer,
        amount=max(gross - _invoice_tax(obj), 0), gross_amount=gross,
        currency=str(obj.get("currency", "usd")).upper(),
        occurred_at=from_timestamp(paid_at) if paid_at else at,
        charge_ref=_id(obj.get("charge")), intent_ref=_invoice_intent(obj), subscription_ref=sub,
        plan=_invoice_plan(obj), partner_code=meta.get("partner_code"),
        install_id=meta.get("install_id"), email=obj.get("customer_email"))]


def _customer(event: dict[str, Any], obj: dict[str, Any], at: Any) -> list[Any]:
    meta = _metadata(obj)
    return [CustomerSeen(provider=PROVIDER, customer_ref=obj["id"], occurred_at=at,
                         email=obj.get("email"), partner_code=meta.get("partner_code"),
                         install_id=meta.get("install_id"))] + _coupon_fact(obj, obj["id"], at)


def _checkout(event: dict[str, Any], obj: dict[str, Any], at: Any) -> list[Any]:
    customer = _id(obj.get("customer"))
    if not customer:
        return []
    email = (obj.get("customer_details") or {}).get("email") or obj.get("customer_email")
    code = obj.get("client_reference_id") or _metadata(obj).get("partner_code")
    facts: list[Any] = [CustomerSeen(provider=PROVIDER, customer_ref=customer, occurred_at=at,
                                     email=email, install_id=_metadata(obj).get("install_id"))]
    if code:
        facts.append(AttributionClaimed(provider=PROVIDER, customer_ref=customer, code=code,
                                        source="code", occurred_at=at, email=email))
    return facts + _coupon_fact(obj, customer, at, email)


def _subscription(event: dict[str, Any], obj: dict[str, Any], at: Any) -> list[Any]:
    status = ("cancelled" if event["type"].endswith(".deleted")
              else STATUS.get(obj.get("status", "")))
    customer = _id(obj.get("customer"))
    if status is None or not customer:
        return []
    items = (obj.get("items") or {}).get("data") or []
    plan = next((p for p in (plan_of(i.get("price")) for i in items) if p), None)
    meta = _metadata(obj)
    return ([SubscriptionChanged(provider=PROVIDER, subscription_ref=obj["id"],
                                 customer_ref=customer, status=status, occurred_at=at, plan=plan,
                                 partner_code=meta.get("partner_code"),
                                 install_id=meta.get("install_id"),
                                 ends_at=_subscription_ends(obj, status, items))]
            + _coupon_fact(obj, customer, at))


def _subscription_ends(obj: dict[str, Any], status: str, items: list[Any]) -> Any:
    """When the trial, the paid period or (cancelled) the subscription ends. Up to acacia the
    period end is the subscription's `current_period_end`; from basil on only its items carry
    one (the latest of them counts)."""
    if status == "cancelled":
        stamp = obj.get("ended_at") or obj.get("canceled_at")
    elif status == "trial":
        stamp = obj.get("trial_end")
    else:
        ends = [i.get("current_period_end") for i in items if isinstance(i, dict)]
        stamp = obj.get("current_period_end") or max(
            (e for e in ends if isinstance(e, int) and not isinstance(e, bool)), default=None)
    if not isinstance(stamp, int) or isinstance(stamp, bool):
        return None
    try:
        return from_timestamp(stamp)
    except ValueError:  # a date the hub cannot hold: the list shows none rather than refuse
        return None


def _refund(event: dict[str, Any], obj: dict[str, Any], at: Any) -> list[Any]:
    """`charge.refunded`: the charge's cumulative refunded amount (before basil the charge also
    names its invoice; from basil on only its payment intent)."""
    return [PaymentAdjusted(provider=PROVIDER, kind="refund_total",
                            key=f"{obj['id']}:{obj.get('amount_refunded', 0)}",
                            amount=minor_units(obj.get("amount_refunded")), occurred_at=at,
                            payment_ref=_id(obj.get("invoice")), charge_ref=obj["id"],
                            intent_ref=_id(obj.get("payment_intent")))]


def _refund_object(event: dict[str, Any], obj: dict[str, Any], at: Any) -> list[Any]:
    """`refund.created` / `refund.updated` / `charge.refund.updated`: one Refund, counted once
    it succeeded (a pending one is counted by its later update; a failed or cancelled one never).
    Sent as well as `charge.refunded`; the larger of the two sums counts, so both never add up."""
    if obj.get("status") != "succeeded" or not (obj.get("charge") or obj.get("payment_intent")):
        return []
    return [PaymentAdjusted(provider=PROVIDER, kind="refund", key=obj["id"],
                            amount=minor_units(obj.get("amount")), occurred_at=at,
                            charge_ref=_id(obj.get("charge")),
                            intent_ref=_id(obj.get("payment_intent")))]


def _dispute(event: dict[str, Any], obj: dict[str, Any], at: Any) -> list[Any]:
    return [PaymentAdjusted(provider=PROVIDER, kind="dispute", key=obj["id"],
                            amount=minor_units(obj.get("amount")), occurred_at=at,
                            charge_ref=_id(obj.get("charge")),
                            intent_ref=_id(obj.get("payment_intent")))]


# A closed dispute the merchant won (or an inquiry closed without a chargeback) gave the money
# back: its reversal is booked back. Lost: it stays reversed (a dispute, should `created` be lost).
WON = ("won", "warning_closed")


def _dispute_closed(event: dict[str, Any], obj: dict[str, Any], at: Any) -> list[Any]:
    status = obj.get("status")
    if status == "lost":
        return _dispute(event, obj, at)
    if status not in WON:
        return []
    return [PaymentAdjusted(provider=PROVIDER, kind="dispute_won", key=obj["id"],
                            amount=minor_units(obj.get("amount")), occurred_at=at,
                            charge_ref=_id(obj.get("charge")),
                            intent_ref=_id(obj.get("payment_intent")))]


def _invoice_payment(event: dict[str, Any], obj: dict[str, Any], at: Any) -> list[Any]:
    """`invoice_payment.paid` (basil on): which payment intent or charge paid which invoice."""
    payment: dict[str, Any] = obj["payment"] if isinstance(obj.get("payment"), dict) else {}
    return _link(obj["id"], _id(obj.get("invoice")), _id(payment.get("payment_intent")),
                 _id(payment.get("charge")), at)


def _link(key: str, invoice: str | None, intent: str | None, charge: str | None,
          at: Any) -> list[Any]:
    if not invoice or not (intent or charge):
        return []
    return [PaymentAdjusted(provider=PROVIDER, kind=LINK, key=key, amount=0, occurred_at=at,
                            payment_ref=invoice, intent_ref=intent, charge_ref=charge)]


def _payment_failed(event: dict[str, Any], obj: dict[str, Any], at: Any) -> list[Any]:
    customer = _id(obj.get("customer"))
    sub, _ = _invoice_subscription(obj)
    return [PaymentFailed(provider=PROVIDER, customer_ref=customer, occurred_at=at,
                          subscription_ref=sub)] if customer else []


NORMALISERS: dict[str, Callable[[dict[str, Any], dict[str, Any], Any], list[Any]]] = {
    "customer.created": _customer,
    "customer.updated": _customer,
    "checkout.session.completed": _checkout,
    "invoice.paid": _invoice_paid,
    "invoice.payment_succeeded": _invoice_paid,
    "invoice.payment_failed": _payment_failed,
    "invoice_payment.paid": _invoice_payment,
    "charge.refunded": _refund,
    "refund.created": _refund_object,
    "refund.updated": _refund_object,
    "charge.refund.updated": _refund_object,
    "charge.dispute.created": _dispute,
    "charge.dispute.closed": _dispute_closed,
    "customer.subscription.created": _subscription,
    "customer.subscription.updated": _subscription,
    "customer.subscription.deleted": _subscription,
    "customer.subscription.paused": _subscription,
}


def normalise(event: dict[str, Any]) -> list[Any]:
    """Facts for a Stripe event; an unknown type gives none (it is stored and ignored)."""
    handler = NORMALISERS.get(event.get("type", ""))
    obj = (event.get("data") or {}).get("object")
    if handler is None or not isinstance(obj, dict) or not obj.get("id"):
        return []
    return handler(event, obj, from_timestamp(event.get("created") or time.time()))


class StripeLookup:
    """Stripe API reads the webhook path needs: a customer's email and partner code, and which
    payment paid which invoice (basil on, when no `invoice_payment.paid` told the hub yet)."""

    def __init__(self, api_key: str, timeout: float = 5.0):
        self.client = stripe.StripeClient(
            str(api_key), http_client=stripe.HTTPXClient(timeout=timeout, allow_sync_methods=True),
            max_network_retries=1)

    def customer(self, customer_ref: str) -> dict[str, Any] | None:
        try:
            customer = self.client.v1.customers.retrieve(customer_ref)
        except stripe.StripeError as exc:
            # The event is still stored and applied; attribution may arrive later by other means.
            log.warning("stripe customer lookup failed for %s: %s", customer_ref,
                        type(exc).__name__)
            return None
        return _plain(customer)

    def invoice_payments(self, *, invoice: str | None = None,
                         intent: str | None = None) -> list[dict[str, Any]]:
        """The paid InvoicePayments of an invoice, or of a payment intent (Stripe's Invoice
        Payments list); none when Stripe cannot be asked (a later event may still link them)."""
        params: dict[str, Any] = {"status": "paid", "limit": 10}
        if invoice:
            params["invoice"] = invoice
        elif intent:
            params["payment"] = {"type": "payment_intent", "payment_intent": intent}
        else:
            return []
        try:
            page = self.client.v1.invoice_payments.list(params)  # type: ignore[arg-type]
        except stripe.StripeError as exc:
            log.warning("stripe invoice payments lookup failed for %s: %s", invoice or intent,
                        type(exc).__name__)
            return []
        return [_plain(item) for item in page.data]


def _plain(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)  # type: ignore[no-any-return]


def lookup_of(hub: Hub, api_key: str) -> StripeLookup:
    """The hub's one Stripe client (built on first use, then reused: not per event)."""
    lookup = hub.extras.get("stripe_lookup")
    if not isinstance(lookup, StripeLookup):
        lookup = hub.extras["stripe_lookup"] = StripeLookup(api_key)
    return lookup


def enrich(hub: Hub, facts: list[Any], session: Session | None = None,
           api_version: str | None = None) -> list[Any]:
    """When an API key is set: fill a payment's missing attribution from the Stripe customer,
    and link a basil-or-later invoice and the payment that paid it when the hub does not know
    the link yet. `session`: read what the hub knows through it (a replay batch's uncommitted
    work)."""
    api_key = hub.config.connectors.stripe.api_key
    if not api_key:
        return facts
    if session is None:
        with hub.sessions() as own:
            return _enrich(hub, str(api_key), facts, own, api_version)
    return _enrich(hub, str(api_key), facts, session, api_version)


def _enrich(hub: Hub, api_key: str, facts: list[Any], session: Session,
            api_version: str | None) -> list[Any]:
    out = []
    for fact in facts:
        if isinstance(fact, PaymentSucceeded) and not fact.partner_code:
            if not is_attributed(session, PROVIDER, fact.customer_ref):
                customer = lookup_of(hub, api_key).customer(fact.customer_ref)
                if customer:
                    out.append(CustomerSeen(provider=PROVIDER, customer_ref=fact.customer_ref,
                                            occurred_at=fact.occurred_at,
                                            email=customer.get("email"),
                                            partner_code=_metadata(customer).get("partner_code"),
                                            install_id=_metadata(customer).get("install_id")))
        out.append(fact)
        if not invoice_names_payment(api_version):
            out.extend(_api_links(hub, api_key, fact, session))
    return out


def _api_links(hub: Hub, api_key: str, fact: Any, session: Session) -> list[Any]:
    """Links asked of Stripe for a basil invoice paid, or a refund or dispute of a payment
    intent, whose link the hub does not know yet."""
    if (isinstance(fact, PaymentSucceeded) and fact.payment_ref.startswith("in_")
            and not (fact.intent_ref or fact.charge_ref)):
        if linked_refs(session, PROVIDER, {"payment_ref": {fact.payment_ref}})["intent_ref"]:
            return []
        items = lookup_of(hub, api_key).invoice_payments(invoice=fact.payment_ref)
    elif (isinstance(fact, PaymentAdjusted) and fact.kind != LINK and not fact.payment_ref
          and fact.intent_ref):
        known = linked_refs(session, PROVIDER, {"charge_ref": {fact.charge_ref},
                                                "intent_ref": {fact.intent_ref}})
        if known["payment_ref"]:
            return []
        items = lookup_of(hub, api_key).invoice_payments(intent=fact.intent_ref)
    else:
        return []
    links: list[Any] = []
    for item in items:
        links.extend(_invoice_payment({}, item, fact.occurred_at) if item.get("id") else [])
    return links


def verify(payload: bytes, header: str | None, secret: str, tolerance: int) -> dict[str, Any]:
    """Check the Stripe-Signature header (HMAC-SHA256, replay tolerance both ways) and parse."""
    if not header:
        raise BadSignature("missing Stripe-Signature header")
    try:
        stripe.WebhookSignature.verify_header(payload.decode("utf-8"), header, secret, tolerance)
    except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError):
        raise BadSignature("invalid Stripe signature") from None
    stamp = next((p[2:] for p in header.split(",") if p.startswith("t=")), "")
    if stamp.isdigit() and int(stamp) > time.time() + tolerance:
        raise BadSignature("Stripe signature is dated in the future")
    try:
        event = json.loads(payload)
    except ValueError:
        raise BadRequest("body is not valid JSON", code="invalid_json") from None
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not event.get("type"):
        raise BadRequest("not a Stripe event", code="invalid_event")
    return event


def process(hub: Hub, event: dict[str, Any], raw: str | None = None) -> bool:
    """Store and apply one Stripe event (webhook or replay). False for a duplicate."""
    item = looked_up(prepare(hub, event, raw=raw))
    return ingest(hub, item.provider, item.event_id, item.type, item.occurred_at, item.payload,
                  item.facts)


def prepare(hub: Hub, event: dict[str, Any], session: Session | None = None,
            raw: str | None = None) -> Incoming:
    """A Stripe event read into what the hub stores and the facts it applies. Without a
    `session` (a webhook), a payment the customer lookup might concern is not checked here: the
    item names its customer and leaves the check and the lookup to `Incoming.lookup`, so no
    event opens a session of its own (the group commit checks a whole batch at once)."""
    facts = well_typed(normalise(event))
    version = event.get("api_version")
    created = from_timestamp(event.get("created") or time.time())
    payload = raw if raw is not None else event
    wanted = tuple((PROVIDER, f.customer_ref) for f in facts
                   if isinstance(f, PaymentSucceeded) and not f.partner_code)
    if session is None and wanted and hub.config.connectors.stripe.api_key:
        return Incoming(PROVIDER, event["id"], str(event["type"]), created, payload, facts,
                        unless_attributed=wanted, lookup=functools.partial(
                            _enriched, hub, event["id"], str(event["type"]), created, payload,
                            facts, version))
    return _enriched(hub, event["id"], str(event["type"]), created, payload, facts, version,
                     session)


def _enriched(hub: Hub, event_id: str, type_: str, created: Any, payload: Any, facts: list[Any],
              api_version: str | None, session: Session | None = None) -> Incoming:
    out = enrich(hub, facts, session, api_version=api_version)
    # `prepare` checked the event's own facts already: only what enrichment added is new.
    well_typed([fact for fact in out if not any(fact is own for own in facts)])
    return Incoming(PROVIDER, event_id, type_, created, payload, out)


async def webhook(request: Request) -> JSONResponse:
    hub = hub_of(request)
    conf = hub.config.connectors.stripe
    try:
        body = await read_body(request, hub.config.server.max_body_bytes)
        if not conf.webhook_secret:
            raise HTTPError("Stripe webhook secret is not configured", code="not_configured",
                            status=503)
        event = verify(body, request.headers.get("stripe-signature"), str(conf.webhook_secret),
                       conf.tolerance_seconds)
    except HTTPError as exc:
        if isinstance(exc, BadSignature) or exc.status >= 500:
            # At WARNING, so an operator sees a wrong secret or a forged call without turning
            # logging up; the reason and the sender only, never the header or the secret.
            log.warning("stripe webhook refused (%s %s): %s; from %s", exc.status, exc.code,
                        exc.message, request.client.host if request.client else "?")
        return error_response(exc)
    # `prepare` without a session only reads the event (look-ups wait for `Incoming.lookup`).
    return await apply_verified_event("stripe", prepare, hub, event, body.decode("utf-8"),
                                      blocking=False)


@hookimpl
def register_connectors(register: Callable[[Connector], None]) -> None:
    register(Connector(name=PROVIDER, description="Stripe billing webhooks", process=process,
                       prepare=prepare,
                       routes=[Route("/webhooks/stripe", webhook, methods=["POST"])]))


@hookimpl
def register_commands(command: Callable[..., Any]) -> None:
    add_trigger_command(command)
