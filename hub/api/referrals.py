"""Operator attribution: manual referrals, the flagged list, and coupon codes per partner."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub.api.http import PROVIDER_SCHEMA, field, hub_of, provider_field, read_json, require_operator
from hub.api.openapi import register_body
from hub.attribution.coupons import codes_of, map_code
from hub.attribution.partners import get_partner
from hub.attribution.referrals import referral_json
from hub.clock import parse_instant, utcnow
from hub.db.audit import record_action
from hub.db.models import Customer, Referral
from hub.errors import Unprocessable
from hub.ingest.assignments import assign


def _effective(data: dict[str, Any]) -> Any:
    raw = field(data, "effective_from", required=False)
    try:
        return parse_instant(raw) if raw else utcnow()
    except ValueError:
        raise Unprocessable("effective_from must be an ISO-8601 time",
                            code="invalid_field") from None


async def create(request: Request) -> JSONResponse:
    """Attach a customer to a partner (source manual), or reassign it from `effective_from` on."""
    actor = require_operator(request)
    data = await read_json(request)
    hub = hub_of(request)
    args = dict(provider=provider_field(hub, data), customer_ref=field(data, "customer_ref"),
                email=field(data, "email", required=False), at=_effective(data), actor=actor)
    partner_id = field(data, "partner_id")

    def work() -> tuple[dict[str, Any], str]:
        with hub.transaction() as session:
            partner = get_partner(session, partner_id)
            referral, outcome = assign(hub, session, partner, **args)
            return referral_json(referral), outcome

    body, outcome = await run_in_threadpool(work)
    return JSONResponse({**body, "outcome": outcome},
                        status_code=201 if outcome == "assigned" else 200)


async def listing(request: Request) -> JSONResponse:
    """Referrals, filtered by `partner_id`, `program`, `source` or `flagged=true`
    (self-referrals, for the operator to review)."""
    require_operator(request)
    hub = hub_of(request)
    q = request.query_params
    stmt = select(Referral, Customer).join(Customer, Customer.id == Referral.customer_id)
    for name in ("partner_id", "program", "source"):
        if q.get(name):
            stmt = stmt.where(getattr(Referral, name) == q[name])
    if q.get("flagged") in ("1", "true"):
        stmt = stmt.where(Referral.self_referral.is_(True))

    def work() -> dict[str, Any]:
        with hub.sessions() as session:
            rows = session.execute(stmt.order_by(Referral.id.desc()).limit(1000)).all()
            return {"items": [referral_json(r, c) for r, c in rows]}

    return JSONResponse(await run_in_threadpool(work))


async def add_coupon(request: Request) -> JSONResponse:
    """Map a coupon id, promotion-code id or promotion code to the partner (201; 200 if mapped)."""
    actor = require_operator(request)
    data = await read_json(request)
    hub = hub_of(request)
    partner_id = request.path_params["partner_id"]
    provider, code = provider_field(hub, data), field(data, "code")

    def work() -> tuple[dict[str, Any], bool]:
        with hub.transaction() as session:
            partner = get_partner(session, partner_id)
            row, created = map_code(session, partner, provider, code)
            if created:
                record_action(session, actor, "coupon.map", partner.id, provider=provider,
                              code=row.code)
            return {"partner_id": partner.id, "provider": row.provider, "code": row.code}, created

    body, created = await run_in_threadpool(work)
    return JSONResponse(body, status_code=201 if created else 200)


async def list_coupons(request: Request) -> JSONResponse:
    """The coupon and promotion codes mapped to a partner."""
    require_operator(request)
    hub = hub_of(request)
    partner_id = request.path_params["partner_id"]

    def work() -> dict[str, Any]:
        with hub.sessions() as session:
            get_partner(session, partner_id)
            return {"items": [{"provider": r.provider, "code": r.code,
                               "created_at": r.created_at.isoformat()}
                              for r in codes_of(session, partner_id)]}

    return JSONResponse(await run_in_threadpool(work))


register_body("post", "/api/v1/referrals", {
    "type": "object", "required": ["partner_id", "customer_ref"],
    "properties": {"partner_id": {"type": "string"}, "customer_ref": {"type": "string"},
                   "provider": PROVIDER_SCHEMA,
                   "email": {"type": "string"},
                   "effective_from": {"type": "string", "format": "date-time"}}})
register_body("post", "/api/v1/partners/{partner_id}/coupons", {
    "type": "object", "required": ["code"],
    "properties": {"code": {"type": "string"},
                   "provider": PROVIDER_SCHEMA}})

ROUTES = [
    Route("/api/v1/referrals", create, methods=["POST"]),
    Route("/api/v1/referrals", listing, methods=["GET"]),
    Route("/api/v1/partners/{partner_id}/coupons", add_coupon, methods=["POST"]),
    Route("/api/v1/partners/{partner_id}/coupons", list_coupons, methods=["GET"]),
]
