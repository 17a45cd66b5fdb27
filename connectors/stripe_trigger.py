"""Realistic Stripe test events, signed with Stripe's real scheme, like `stripe trigger`.

Used by ``hub trigger`` (a command this connector adds through the `register_commands` hook)
and by the tests, so nobody computes an HMAC by hand. Each object is built as Stripe sends it
in a webhook of the given API version: no field that Stripe returns only when expanded or
included (tests/test_stripe_contract.py checks every field against Stripe's own fixtures).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

import httpx

from connectors.stripe_versions import BASIL, NEWEST, VERSIONS, invoice_names_payment
from hub.config import load_config
from hub.errors import StartupError


def sign(payload: str, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header for `payload`: ``t=<ts>,v1=<hex hmac-sha256>``."""
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


# The version an object built in the pre-basil shape (``shape="legacy"``) is sent in.
LEGACY = "2025-02-24.acacia"


def event(type_: str, obj: dict[str, Any], *, created: int | None = None,
          event_id: str | None = None, api_version: str | None = None) -> dict[str, Any]:
    """An event of `api_version`; by default the newest, or `LEGACY` for an object built in the
    pre-basil shape (an invoice naming its charge, a charge naming its invoice)."""
    if api_version is None:
        legacy = ("charge" in obj or "payment_intent" in obj) if obj.get("object") == "invoice" \
            else obj.get("object") == "charge" and "invoice" in obj
        api_version = LEGACY if legacy else NEWEST
    return {"id": event_id or f"evt_{secrets.token_hex(12)}", "object": "event",
            "api_version": api_version, "created": created or int(time.time()),
            "type": type_, "livemode": False, "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None}, "data": {"object": obj}}


def customer(customer_id: str, *, email: str, partner_code: str | None = None,
             install_id: str | None = None, created: int | None = None) -> dict[str, Any]:
    meta = {k: v for k, v in (("partner_code", partner_code), ("install_id", install_id)) if v}
    return {"id": customer_id, "object": "customer", "email": email, "metadata": meta,
            "created": created or int(time.time()), "livemode": False}


def invoice(invoice_id: str, *, customer_id: str, amount: int, currency: str = "usd",
            subscription_id: str | None = None, paid_at: int | None = None,
            charge_id: str | None = None, intent_id: str | None = None, plan: str | None = None,
            partner_code: str | None = None, shape: str = "basil", tax: int = 0,
            email: str | None = None, api_version: str | None = None) -> dict[str, Any]:
    """An invoice as `api_version` sends it (default: `shape`, "basil" for 2025-03-31.basil and
    later, "legacy" for earlier): before basil it names its `subscription`, `charge` and
    `payment_intent`; from basil on none of them (`parent.subscription_details` names the
    subscription, and what paid it arrives as `invoice_payment.paid`: see `invoice_payment`)."""
    if api_version is not None:
        shape = "legacy" if invoice_names_payment(api_version) else "basil"
    meta = {"partner_code": partner_code} if partner_code else {}
    price: dict[str, Any] = {"id": f"price_{plan or 'std'}", "object": "price", "lookup_key": plan,
             "metadata": {}, "product": f"prod_{plan or 'std'}"}
    inv: dict[str, Any] = {
        "id": invoice_id, "object": "invoice", "customer": customer_id, "customer_email": email,
        "amount_paid": amount, "amount_due": amount, "total": amount, "currency": currency,
        "status": "paid", "billing_reason": "subscription_cycle",
        "status_transitions": {"paid_at": paid_at or int(time.time())},
        "metadata": {},
    }
    line: dict[str, Any] = {"id": f"il_{invoice_id}", "object": "line_item", "amount": amount - tax,
                            "currency": currency}
    if shape == "legacy":
        line["price"] = price
        inv.update(subscription=subscription_id, charge=charge_id, payment_intent=intent_id,
                   tax=tax, subscription_details={"metadata": meta})
    else:
        # The price stays expanded here (Stripe sends its id) so the plan rules have a name.
        line["pricing"] = {"type": "price_details", "price_details": {"price": price}}
        inv["parent"] = {"type": "subscription_details", "subscription_details": {
            "subscription": subscription_id, "metadata": meta}} if subscription_id else None
        inv["total_taxes"] = [{"amount": tax}] if tax else []
    inv["lines"] = {"object": "list", "data": [line]}
    return inv


def invoice_payment(invoice_id: str, *, amount: int, intent_id: str | None = None,
                    charge_id: str | None = None, currency: str = "usd",
                    paid_at: int | None = None) -> dict[str, Any]:
    """The InvoicePayment of `invoice_payment.paid` (basil on): which payment intent (or, for a
    payment without one, which charge) paid the invoice."""
    payment: dict[str, Any] = ({"type": "payment_intent", "payment_intent": intent_id}
                               if intent_id else {"type": "charge", "charge": charge_id})
    at = paid_at or int(time.time())
    return {"id": f"inpay_{invoice_id.removeprefix('in_')}", "object": "invoice_payment",
            "amount_paid": amount, "amount_requested": amount, "created": at,
            "currency": currency, "invoice": invoice_id, "is_default": True, "livemode": False,
            "payment": payment, "status": "paid",
            "status_transitions": {"canceled_at": None, "paid_at": at}}


def paid_events(inv: dict[str, Any], *, intent_id: str | None, charge_id: str | None = None,
                api_version: str | None = None, created: int | None = None) -> list[dict[str, Any]]:
    """What Stripe sends when `inv` is paid: `invoice.paid`, and from basil on
    `invoice_payment.paid` naming the payment (before basil the invoice names it itself)."""
    version = api_version or event("invoice.paid", inv)["api_version"]
    out = [event("invoice.paid", inv, created=created, api_version=version)]
    if not invoice_names_payment(version) and (intent_id or charge_id):
        out.append(event("invoice_payment.paid", invoice_payment(
            inv["id"], amount=int(inv["amount_paid"]), intent_id=intent_id, charge_id=charge_id,
            currency=inv["currency"], paid_at=(inv.get("status_transitions") or {}).get("paid_at")),
            created=created, api_version=version))
    return out


def charge_refunded(charge_id: str, *, amount: int, amount_refunded: int, currency: str = "usd",
                    invoice_id: str | None = None, intent_id: str | None = None,
                    customer_id: str | None = None,
                    api_version: str | None = None) -> dict[str, Any]:
    """The charge of `charge.refunded`. Before basil it names its `invoice` (when `invoice_id`
    is given or the version is pre-basil); from basil on it has no such field."""
    charge = {"id": charge_id, "object": "charge", "amount": amount,
              "amount_refunded": amount_refunded, "currency": currency,
              "refunded": amount_refunded >= amount, "payment_intent": intent_id,
              "customer": customer_id}
    legacy = invoice_names_payment(api_version) if api_version else invoice_id is not None
    if legacy:
        charge["invoice"] = invoice_id
    return charge


def refund(refund_id: str, *, amount: int, charge_id: str | None = None,
           intent_id: str | None = None, currency: str = "usd",
           status: str = "succeeded") -> dict[str, Any]:
    """The Refund of `refund.created` / `refund.updated` (one refund, not the running total)."""
    return {"id": refund_id, "object": "refund", "amount": amount, "charge": charge_id,
            "payment_intent": intent_id, "currency": currency, "status": status,
            "created": int(time.time()), "metadata": {}, "reason": None}


def dispute(dispute_id: str, *, charge_id: str, amount: int, intent_id: str | None = None,
            currency: str = "usd", status: str = "needs_response") -> dict[str, Any]:
    """The Dispute of `charge.dispute.created` (or, with status won / lost,
    `charge.dispute.closed`)."""
    return {"id": dispute_id, "object": "dispute", "charge": charge_id, "amount": amount,
            "currency": currency, "payment_intent": intent_id, "status": status}


def subscription(sub_id: str, *, customer_id: str, status: str = "active", plan: str | None = None,
                 partner_code: str | None = None, trial_end: int | None = None,
                 period_end: int | None = None) -> dict[str, Any]:
    """A subscription as basil and later render it: the period end is on its item."""
    meta = {"partner_code": partner_code} if partner_code else {}
    item: dict[str, Any] = {"id": f"si_{sub_id}", "price": {
        "id": f"price_{plan or 'std'}", "lookup_key": plan, "metadata": {}}}
    if period_end is not None:
        item["current_period_end"] = period_end
    return {"id": sub_id, "object": "subscription", "customer": customer_id, "status": status,
            "metadata": meta, "trial_end": trial_end,
            "items": {"object": "list", "data": [item]}}


def checkout_completed(session_id: str, *, customer_id: str, client_reference_id: str | None,
                       email: str | None = None,
                       subscription_id: str | None = None) -> dict[str, Any]:
    return {"id": session_id, "object": "checkout.session", "customer": customer_id,
            "client_reference_id": client_reference_id, "subscription": subscription_id,
            "customer_details": {"email": email}, "mode": "subscription", "status": "complete"}


def build(type_: str, **opts: Any) -> dict[str, Any]:
    """A whole event for `hub trigger TYPE`, as Stripe sends it in `api_version` (default the
    newest), with sensible ids where none are given."""
    return build_all(type_, **opts)[0]


def build_all(type_: str, **opts: Any) -> list[dict[str, Any]]:
    """The events Stripe sends for `hub trigger TYPE`: one, except a basil-or-later
    `invoice.paid`, which `invoice_payment.paid` follows (Stripe links the invoice and the
    payment intent in that event only)."""
    version = opts.get("api_version") or NEWEST
    suffix = secrets.token_hex(6)
    cus = opts.get("customer") or f"cus_{suffix}"
    amount = int(opts.get("amount") or 4900)
    currency = (opts.get("currency") or "usd").lower()
    charge_id = opts.get("charge") or f"ch_{suffix}"
    # The intent follows the charge's name unless given: `--charge ch_demo` on the payment and on
    # its refund names the same intent (pi_demo), which is how a basil refund finds the invoice.
    intent_id = opts.get("intent") or f"pi_{charge_id.removeprefix('ch_')}"
    if type_ in ("customer.created", "customer.updated"):
        obj = customer(cus, email=opts.get("email") or f"{cus}@example.com",
                       partner_code=opts.get("partner_code"))
    elif type_ == "invoice.paid":
        inv = invoice(opts.get("invoice") or f"in_{suffix}", customer_id=cus, amount=amount,
                      currency=currency,
                      subscription_id=opts.get("subscription") or f"sub_{suffix}",
                      charge_id=charge_id, intent_id=intent_id,
                      partner_code=opts.get("partner_code"), api_version=version)
        return paid_events(inv, intent_id=intent_id, api_version=version)
    elif type_ == "invoice_payment.paid":
        if invoice_names_payment(version):
            raise ValueError(f"invoice_payment.paid is sent from {BASIL}.basil on, not in "
                             f"{version}")
        obj = invoice_payment(opts.get("invoice") or f"in_{suffix}", amount=amount,
                              intent_id=intent_id, currency=currency)
    elif type_ == "charge.refunded":
        obj = charge_refunded(charge_id, amount=amount,
                              amount_refunded=int(opts.get("refunded") or amount),
                              invoice_id=opts.get("invoice"), intent_id=intent_id,
                              customer_id=cus, currency=currency, api_version=version)
    elif type_ in ("refund.created", "refund.updated"):
        obj = refund(f"re_{suffix}", amount=int(opts.get("refunded") or amount),
                     charge_id=charge_id, intent_id=intent_id, currency=currency)
    elif type_ in ("charge.dispute.created", "charge.dispute.closed"):
        obj = dispute(f"dp_{suffix}", charge_id=charge_id, amount=amount, intent_id=intent_id,
                      currency=currency,
                      status="won" if type_.endswith("closed") else "needs_response")
    elif type_ == "checkout.session.completed":
        obj = checkout_completed(f"cs_{suffix}", customer_id=cus,
                                 client_reference_id=opts.get("partner_code"),
                                 email=opts.get("email"))
    elif type_.startswith("customer.subscription."):
        obj = subscription(opts.get("subscription") or f"sub_{suffix}", customer_id=cus,
                           partner_code=opts.get("partner_code"),
                           status="canceled" if type_.endswith("deleted") else "active")
    else:
        raise ValueError(f"hub trigger does not know how to build {type_!r}")
    return [event(type_, obj, api_version=version)]


def signed_request(evt: dict[str, Any], secret: str,
                   timestamp: int | None = None) -> tuple[str, dict[str, str]]:
    body = json.dumps(evt, separators=(",", ":"))
    return body, {"Stripe-Signature": sign(body, secret, timestamp),
                  "Content-Type": "application/json"}


def cmd_trigger(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    secret = args.secret or str(config.connectors.stripe.webhook_secret)
    if not secret:
        raise StartupError("no webhook secret: pass --secret or set HUB_STRIPE_WEBHOOK_SECRET")
    evts = build_all(args.type, customer=args.customer, amount=args.amount,
                     currency=args.currency, partner_code=args.partner_code, email=args.email,
                     invoice=args.invoice, charge=args.charge, intent=args.intent,
                     refunded=args.refunded, api_version=args.api_version)
    url = args.url or str(config.server.base_url)
    failed = False
    for evt in evts:
        body, headers = signed_request(evt, secret)
        response = httpx.post(url.rstrip("/") + "/webhooks/stripe", content=body,
                              headers=headers, timeout=10)
        print(json.dumps({"event": evt["id"], "type": evt["type"],
                          "api_version": evt["api_version"], "status": response.status_code,
                          "response": _json_or_text(response)}))
        failed = failed or response.status_code >= 300
    return 1 if failed else 0


def _json_or_text(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def add_trigger_command(command: Any) -> None:
    """`hub trigger TYPE`: build, sign and post one event to a running hub."""
    g = command("trigger", cmd_trigger, "build, sign and post a realistic Stripe test event")
    g.add_argument("type", help="the event type: invoice.paid, customer.created, "
                   "charge.refunded, charge.dispute.created, refund.created, "
                   "checkout.session.completed, customer.subscription.*")
    g.add_argument("--url", help="the running hub to post to (default: the configured "
                   "[server] base_url, http://127.0.0.1:8000 unless set)")
    g.add_argument("--secret", help="webhook secret (default: [connectors.stripe] "
                   "webhook_secret or HUB_STRIPE_WEBHOOK_SECRET)")
    g.add_argument("--customer", help="the Stripe customer id (default: a new cus_...)")
    g.add_argument("--email", help="the customer's e-mail (customer.*, checkout)")
    g.add_argument("--partner-code", help="a partner or link code: metadata.partner_code, or "
                   "client_reference_id on a checkout (a click id clk_... works too)")
    g.add_argument("--amount", type=int, help="minor units, e.g. 4900 for $49.00 (default 4900)")
    g.add_argument("--currency", default="usd", help="ISO 4217 code (default: %(default)s)")
    g.add_argument("--invoice", help="the invoice id (default: a new in_...)")
    g.add_argument("--charge", help="the charge id (default: a new ch_...)")
    g.add_argument("--intent", help="the payment intent (refunds and disputes name it)")
    g.add_argument("--api-version", default=NEWEST, choices=VERSIONS, metavar="VERSION",
                   help=f"the Stripe API version to build for (default {NEWEST}; one of "
                        f"{VERSIONS[0]} ... {VERSIONS[-1]})")
    g.add_argument("--refunded", type=int, help="charge.refunded: cumulative refunded amount")
