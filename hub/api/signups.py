"""POST /api/v1/signups: the product reports a new account with its click id or referral code."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub.api.http import PROVIDER_SCHEMA, field, hub_of, provider_field, read_json
from hub.api.installs import check_installer_token
from hub.api.openapi import register_body
from hub.attribution.clicks import claim_for_signup
from hub.clock import parse_instant, utcnow
from hub.db.models import Customer, Referral
from hub.errors import Unprocessable
from hub.facts import SignupReported
from hub.ingest.events import ingest
from hub.runtime import Hub

PRODUCT = "product"
CLOCK_SKEW = timedelta(minutes=5)


def _signed_up_at(data: dict[str, Any]) -> Any:
    """The product's signup time (`signed_up_at`, ISO-8601), else now; never in the future."""
    raw = field(data, "signed_up_at", required=False)
    now = utcnow()
    if raw is None:
        return now
    try:
        at = parse_instant(raw)
    except ValueError:
        raise Unprocessable("signed_up_at must be an ISO-8601 time", code="invalid_field") from None
    if at > now + CLOCK_SKEW:
        raise Unprocessable("signed_up_at is in the future", code="invalid_field")
    return at


def _fact(hub: Hub, data: dict[str, Any]) -> SignupReported:
    provider = provider_field(hub, data)
    customer_ref = field(data, "customer_ref").strip()
    if not customer_ref or len(customer_ref) > 128:
        raise Unprocessable("customer_ref must be 1-128 characters", code="invalid_field")
    return SignupReported(provider=provider, customer_ref=customer_ref,
                          occurred_at=_signed_up_at(data), email=field(data, "email"),
                          click_id=field(data, "click_id", required=False) or None,
                          code=field(data, "code", required=False) or None)


def _event_id(fact: SignupReported) -> str:
    key = f"{fact.provider}\n{fact.customer_ref}\n{fact.click_id or ''}\n{fact.code or ''}"
    return "signup:" + hashlib.sha256(key.encode()).hexdigest()[:40]


def _attributed(hub: Hub, fact: SignupReported) -> dict[str, Any]:
    """The customer's referral in the program the click or code points to; none when the click
    or code matched nothing (an existing referral elsewhere is not reported)."""
    with hub.sessions() as session:
        claim = claim_for_signup(hub, session, click_id=fact.click_id, code=fact.code,
                                 at=fact.occurred_at)
        referral = None if claim is None else session.scalars(
            select(Referral).join(Customer, Customer.id == Referral.customer_id)
            .where(Customer.provider == fact.provider, Customer.ref == fact.customer_ref,
                   Referral.program == claim.partner.program)).first()
        if referral is None:
            return {"partner_id": None, "source": None, "self_referral": False}
        return {"partner_id": referral.partner_id, "source": referral.source,
                "program": referral.program, "self_referral": referral.self_referral}


async def report_signup(request: Request) -> JSONResponse:
    """A new account: 201 with the attributed partner id (null when nothing matched)."""
    check_installer_token(request, signups=True)
    data = await read_json(request)
    hub = hub_of(request)
    fact = _fact(hub, data)
    if not (fact.click_id or fact.code):
        raise Unprocessable("code or click_id is required", code="missing_field")

    def work() -> tuple[dict[str, Any], bool]:
        new = ingest(hub, PRODUCT, _event_id(fact), "signup.reported", fact.occurred_at, data,
                     [fact])
        return _attributed(hub, fact), new

    body, new = await run_in_threadpool(work)
    return JSONResponse({"customer_ref": fact.customer_ref, **body},
                        status_code=201 if new else 200)


register_body("post", "/api/v1/signups", {
    "type": "object", "required": ["email", "customer_ref"],
    "properties": {"code": {"type": "string"}, "click_id": {"type": "string"},
                   "email": {"type": "string"}, "customer_ref": {"type": "string"},
                   "provider": PROVIDER_SCHEMA,
                   "signed_up_at": {"type": "string", "format": "date-time"}}})

ROUTES = [Route("/api/v1/signups", report_signup, methods=["POST"])]
