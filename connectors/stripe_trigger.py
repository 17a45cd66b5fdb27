"""Realistic Stripe test events, signed with Stripe's real scheme, like `stripe trigger`.

Used by ``hub trigger`` (a command this connector adds through the `register_commands` hook)
and by the tests, so nobody computes an HMAC by hand.
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

from hub.config import load_config
from hub.errors import StartupError


def sign(payload: str, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header for `payload`: ``t=<ts>,v1=<hex hmac-sha256>``."""
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def event(type_: str, obj: dict[str, Any], *, created: int | None = None,
          event_id: str | None = None, api_version: str = "2025-03-31.basil") -> dict[str, Any]:
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
            email: str | None = None) -> dict[str, Any]:
    """An invoice in the newer shape (`parent.subscription_details`), or `shape="legacy"` for the
    pre-2025 one (`subscription`, `charge`, `payment_intent` on the invoice)."""
    meta = {"partner_code": partner_code} if partner_code else {}
    price: dict[str, Any] = {"id": f"price_{plan or 'std'}", "object": "price", "lookup_key": plan,
             "metadata": {}, "product": f"prod_{plan or 'std'}"}
    inv: dict[str, Any] = {
        "id": invoice_id, "object": "invoice", "customer": customer_id, "customer_email": email,
        "amount_paid": amount, "amount_due": amount, "total": amount, "currency": currency,
        "status": "paid", "billing_reason": "subscription_cycle",
        "status_transitions": {"paid_at": paid_at or int(time.time())},
        "lines": {"object": "list", "data": [{"id": f"il_{invoice_id}", "amount": amount - tax,
                                              "pricing": {"price_details": {"price": price}},
                                              "price": price}]},
        "metadata": {},
    }
    if shape == "legacy":
        inv.update(subscription=subscription_id, charge=charge_id, payment_intent=intent_id,
                   tax=tax, subscription_details={"metadata": meta})
    else:
        inv["parent"] = {"type": "subscription_details", "subscription_details": {
            "subscription": subscription_id, "metadata": meta}} if subscription_id else None
        inv["total_taxes"] = [{"amount": tax}] if tax else []
        inv["payments"] = {"object": "list", "data": [{"payment": {
            "type": "payment_intent", "payment_intent": intent_id}}]} if intent_id else {"data": []}
    return inv


def charge_refunded(charge_id: str, *, amount: int, amount_refunded: int, currency: str = "usd",
                    invoice_id: str | None = None, intent_id: str | None = None,
                    customer_id: str | None = None) -> dict[str, Any]:
    return {"id": charge_id, "object": "charge", "amount": amount,
            "amount_refunded": amount_refunded, "currency": currency,
            "refunded": amount_refunded >= amount,
            "invoice": invoice_id, "payment_intent": intent_id, "customer": customer_id}


def dispute(dispute_id: str, *, charge_id: str, amount: int, intent_id: str | None = None,
            currency: str = "usd") -> dict[str, Any]:
    return {"id": dispute_id, "object": "dispute", "charge": charge_id, "amount": amount,
            "currency": currency, "payment_intent": intent_id, "status": "needs_response"}


def subscription(sub_id: str, *, customer_id: str, status: str = "active", plan: str | None = None,
                 partner_code: str | None = None) -> dict[str, Any]:
    meta = {"partner_code": partner_code} if partner_code else {}
    return {"id": sub_id, "object": "subscription", "customer": customer_id, "status": status,
            "metadata": meta, "items": {"object": "list", "data": [{"id": f"si_{sub_id}", "price": {
                "id": f"price_{plan or 'std'}", "lookup_key": plan, "metadata": {}}}]}}


def checkout_completed(session_id: str, *, customer_id: str, client_reference_id: str | None,
                       email: str | None = None,
                       subscription_id: str | None = None) -> dict[str, Any]:
    return {"id": session_id, "object": "checkout.session", "customer": customer_id,
            "client_reference_id": client_reference_id, "subscription": subscription_id,
            "customer_details": {"email": email}, "mode": "subscription", "status": "complete"}


def build(type_: str, **opts: Any) -> dict[str, Any]:
    """A whole event for `hub trigger TYPE`, with sensible ids where none are given."""
    suffix = secrets.token_hex(6)
    cus = opts.get("customer") or f"cus_{suffix}"
    amount = int(opts.get("amount") or 4900)
    currency = (opts.get("currency") or "usd").lower()
    if type_ in ("customer.created", "customer.updated"):
        obj = customer(cus, email=opts.get("email") or f"{cus}@example.com",
                       partner_code=opts.get("partner_code"))
    elif type_ == "invoice.paid":
        obj = invoice(opts.get("invoice") or f"in_{suffix}", customer_id=cus, amount=amount,
                      currency=currency,
                      subscription_id=opts.get("subscription") or f"sub_{suffix}",
                      charge_id=opts.get("charge") or f"ch_{suffix}", intent_id=f"pi_{suffix}",
                      partner_code=opts.get("partner_code"), shape="legacy")
    elif type_ == "charge.refunded":
        obj = charge_refunded(opts.get("charge") or f"ch_{suffix}", amount=amount,
                              amount_refunded=int(opts.get("refunded") or amount),
                              invoice_id=opts.get("invoice"), customer_id=cus, currency=currency)
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
    return event(type_, obj)


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
    evt = build(args.type, customer=args.customer, amount=args.amount,
                               currency=args.currency, partner_code=args.partner_code,
                               email=args.email, invoice=args.invoice, charge=args.charge,
                               refunded=args.refunded)
    body, headers = signed_request(evt, secret)
    url = args.url or str(config.server.base_url)
    response = httpx.post(url.rstrip("/") + "/webhooks/stripe", content=body,
                          headers=headers, timeout=10)
    print(json.dumps({"event": evt["id"], "type": evt["type"], "status": response.status_code,
                      "response": _json_or_text(response)}))
    return 0 if response.status_code < 300 else 1


def _json_or_text(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def add_trigger_command(command: Any) -> None:
    """`hub trigger TYPE`: build, sign and post one event to a running hub."""
    g = command("trigger", cmd_trigger, "build, sign and post a realistic Stripe test event")
    g.add_argument("type", help="the event type: invoice.paid, customer.created, "
                   "charge.refunded, checkout.session.completed, customer.subscription.*")
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
    g.add_argument("--refunded", type=int, help="charge.refunded: cumulative refunded amount")
