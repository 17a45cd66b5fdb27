"""/api/v1/payouts and withdrawal requests: read payouts; partners ask, operators decide."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub.api.http import field, hub_of, read_json, require_operator
from hub.api.openapi import register_body
from hub.db.models import Payout
from hub.errors import Unprocessable
from hub.payouts.requests import request_withdrawal
from hub.payouts.states import get_payout, operator_action, payout_json

FILTERS = ("partner_id", "status", "program", "method", "currency", "period")


async def listing(request: Request) -> JSONResponse:
    """Payouts, newest first, filtered by partner_id, status, program, method, currency, period."""
    require_operator(request)
    hub = hub_of(request)
    q = request.query_params

    def work() -> dict[str, Any]:
        stmt = select(Payout).order_by(Payout.created_at.desc(), Payout.id).limit(1000)
        for name in FILTERS:
            if q.get(name):
                stmt = stmt.where(getattr(Payout, name) == q[name])
        with hub.sessions() as session:
            return {"items": [payout_json(p) for p in session.scalars(stmt)]}

    return JSONResponse(await run_in_threadpool(work))


async def read(request: Request) -> JSONResponse:
    """One payout with its provider ids, attempts and failure reason."""
    require_operator(request)
    hub = hub_of(request)

    def work() -> dict[str, Any]:
        with hub.sessions() as session:
            payout = get_payout(session, request.path_params["payout_id"])
            return payout_json(payout)

    return JSONResponse(await run_in_threadpool(work))


async def withdraw(request: Request) -> JSONResponse:
    """A partner's withdrawal request: 201 a payout in `requested`, or 422 saying why not."""
    actor = require_operator(request)
    data = await read_json(request)
    currency = str(field(data, "currency")).upper()
    if len(currency) != 3 or not currency.isalpha():
        raise Unprocessable("currency must be an ISO 4217 code", code="invalid_field")
    method = field(data, "method", required=False)
    hub = hub_of(request)

    def work() -> dict[str, Any]:
        with hub.transaction() as session:
            payout = request_withdrawal(hub, session, request.path_params["partner_id"],
                                                currency, method, actor)
            return payout_json(payout)

    return JSONResponse(await run_in_threadpool(work), status_code=201)


def _action(action: str) -> Any:
    async def endpoint(request: Request) -> JSONResponse:
        actor = require_operator(request)
        data = await read_json(request) if action in ("mark-paid", "reject") else {}
        reference = field(data, "reference", required=False)
        reason = field(data, "reason", required=False)
        hub = hub_of(request)

        def work() -> dict[str, Any]:
            with hub.transaction() as session:
                payout = operator_action(session, request.path_params["payout_id"],
                                                 action, actor, reference=reference, reason=reason)
                return payout_json(payout)

        return JSONResponse(await run_in_threadpool(work))

    endpoint.__doc__ = {
        "approve": "Approve a requested payout: PayPal ones are queued for sending.",
        "reject": "Reject a payout that has not gone to PayPal; its money returns to payable.",
        "mark-paid": "Record a payout paid by hand, with the operator's reference.",
        "retry": "Send a dead-lettered payout again (same sender_batch_id, so never twice).",
    }[action]
    endpoint.__name__ = f"payout_{action.replace('-', '_')}"
    return endpoint


register_body("post", "/api/v1/partners/{partner_id}/withdrawals", {
    "type": "object", "required": ["currency"],
    "properties": {"currency": {"type": "string"}, "method": {"type": "string"}}})
register_body("post", "/api/v1/payouts/{payout_id}/mark-paid", {
    "type": "object", "required": ["reference"], "properties": {"reference": {"type": "string"}}})
register_body("post", "/api/v1/payouts/{payout_id}/reject", {
    "type": "object", "properties": {"reason": {"type": "string"}}})

ROUTES = [
    Route("/api/v1/payouts", listing, methods=["GET"]),
    Route("/api/v1/payouts/{payout_id}", read, methods=["GET"]),
    Route("/api/v1/partners/{partner_id}/withdrawals", withdraw, methods=["POST"]),
    *[Route(f"/api/v1/payouts/{{payout_id}}/{action}", _action(action), methods=["POST"])
      for action in ("approve", "reject", "mark-paid", "retry")],
]
