"""/api/v1/partners: create and read partners, their balances and commission lines."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub.api.http import field, hub_of, read_json, require_operator, whole_number
from hub.attribution.partners import (
    accept_agreement,
    create_partner,
    get_partner,
    partner_json,
    transition,
)
from hub.db.audit import record_action
from hub.db.models import Partner
from hub.errors import Unprocessable
from hub.ledger import entries as ledger
from hub.payouts import payee


async def create(request: Request) -> JSONResponse:
    """Create a partner in a program; returns its id and code. A `paypal_email` given here counts
    as confirmed by the operator; `payout_method` "manual" lists it for payment by hand."""
    actor = require_operator(request)
    data = await read_json(request)
    args = dict(program=field(data, "program"), email=field(data, "email"),
                name=field(data, "name", required=False, default=""),
                kind=field(data, "kind", required=False),
                paypal_email=field(data, "paypal_email", required=False),
                code=field(data, "code", required=False),
                invited=field(data, "invited", bool, required=False, default=False),
                customer_ref=field(data, "customer_ref", required=False),
                website=field(data, "website", required=False),
                payout_method=field(data, "payout_method", required=False, default="paypal"))
    hub = hub_of(request)

    def work() -> dict[str, Any]:
        with hub.transaction() as session:
            partner = create_partner(hub, session, **args)
            record_action(session, actor, "partner.create", partner.id)
            return partner_json(partner)

    return JSONResponse(await run_in_threadpool(work), status_code=201)


async def read(request: Request) -> JSONResponse:
    """A partner with its balances per currency and state."""
    require_operator(request)
    hub = hub_of(request)
    partner_id = request.path_params["partner_id"]

    def work() -> dict[str, Any]:
        with hub.sessions() as session:
            partner = get_partner(session, partner_id)
            return partner_json(partner, balances=ledger.balances(session, partner.id))

    return JSONResponse(await run_in_threadpool(work))


async def update(request: Request) -> JSONResponse:
    """Change how a partner is paid: `payout_method` ("paypal" or "manual": the manual list),
    `paypal_email` (null removes it; an address set here counts as confirmed by the operator),
    `note` (what was agreed, kept in the audit log). Audited."""
    actor = require_operator(request)
    data = await read_json(request)
    unknown = sorted(set(data) - {"payout_method", "paypal_email", "note"})
    if unknown:
        raise Unprocessable(f"unknown field(s): {', '.join(unknown)}", code="invalid_field")
    method = field(data, "payout_method", required=False)
    note = field(data, "note", required=False)
    address = data["paypal_email"] if "paypal_email" in data else payee.UNSET
    hub = hub_of(request)
    partner_id = request.path_params["partner_id"]

    def work() -> dict[str, Any]:
        with hub.transaction() as session:
            partner = get_partner(session, partner_id)
            payee.operator_update(session, partner, actor=actor, payout_method=method,
                                  paypal_email=address, note=note)
            return partner_json(partner)

    return JSONResponse(await run_in_threadpool(work))


async def listing(request: Request) -> JSONResponse:
    """Partners, filtered by program, status or a search in email, name and code."""
    require_operator(request)
    hub = hub_of(request)
    q = request.query_params

    def work() -> dict[str, Any]:
        stmt = select(Partner).order_by(Partner.created_at.desc()).limit(_int(q.get("limit"), 100))
        if q.get("program"):
            stmt = stmt.where(Partner.program == q["program"])
        if q.get("status"):
            stmt = stmt.where(Partner.status == q["status"])
        if q.get("q"):
            like = f"%{q['q']}%"
            stmt = stmt.where(Partner.email.ilike(like) | Partner.name.ilike(like)
                              | Partner.code.ilike(like))
        with hub.sessions() as session:
            return {"items": [partner_json(p) for p in session.scalars(stmt)]}

    return JSONResponse(await run_in_threadpool(work))


async def commissions(request: Request) -> JSONResponse:
    """A partner's commission lines, newest first; negative amounts are reversals."""
    require_operator(request)
    hub = hub_of(request)
    partner_id = request.path_params["partner_id"]
    q = request.query_params

    def work() -> dict[str, Any]:
        with hub.sessions() as session:
            get_partner(session, partner_id)
            lines = ledger.commission_lines(session, partner_id, limit=_int(q.get("limit"), 500),
                                            offset=_int(q.get("offset"), 0))
            return {"items": [commission_json(v) for v in lines]}

    return JSONResponse(await run_in_threadpool(work))


def commission_json(view: ledger.LineView) -> dict[str, Any]:
    c = view.commission
    return {"id": c.id, "partner_id": c.partner_id, "program": c.program, "amount": c.amount,
            "currency": c.currency, "state": view.state, "source_event": view.source_event,
            "earned_at": c.earned_at.isoformat(), "available_at": c.available_at.isoformat(),
            "reverses": c.reverses_id, "key": c.key, "explanation": (c.rule or {}).get("sentence")}


def _status_action(action: str) -> Any:
    async def endpoint(request: Request) -> JSONResponse:
        actor = require_operator(request)
        hub = hub_of(request)
        partner_id = request.path_params["partner_id"]

        def work() -> dict[str, Any]:
            with hub.transaction() as session:
                if action == "agreement":
                    return partner_json(accept_agreement(session, partner_id, actor, hub=hub))
                return partner_json(transition(session, partner_id, action, actor))

        return JSONResponse(await run_in_threadpool(work))

    endpoint.__doc__ = f"Operator action on a partner: {action}."
    endpoint.__name__ = f"partner_{action}"
    return endpoint


def _int(raw: str | None, default: int) -> int:
    if raw is None:
        return default
    value = whole_number(raw)
    if value is None and not (raw.isascii() and raw.isdigit()):
        raise Unprocessable("limit and offset must be whole numbers", code="invalid_query")
    return min(10_000 if value is None else value, 10_000)


ROUTES = [
    Route("/api/v1/partners", create, methods=["POST"]),
    Route("/api/v1/partners", listing, methods=["GET"]),
    Route("/api/v1/partners/{partner_id}", read, methods=["GET"]),
    Route("/api/v1/partners/{partner_id}", update, methods=["PATCH"]),
    Route("/api/v1/partners/{partner_id}/commissions", commissions, methods=["GET"]),
    *[Route(f"/api/v1/partners/{{partner_id}}/{action}", _status_action(action), methods=["POST"])
      for action in ("approve", "decline", "agreement", "suspend", "reactivate")],
]
