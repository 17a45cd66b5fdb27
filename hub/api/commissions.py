"""/api/v1/commissions: one commission line explained (rule, inputs, provider event)."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub.api.http import hub_of, require_operator
from hub.ledger.explain import explain_commission


async def explain(request: Request) -> JSONResponse:
    """Why a commission line is what it is: the rule, its inputs, the provider event, a sentence.

    Reversals name and link the line they reverse; earnings list the reversals of them.
    """
    require_operator(request)
    hub = hub_of(request)
    commission_id = request.path_params["commission_id"]

    def work() -> dict[str, Any]:
        with hub.sessions() as session:
            return explain_commission(hub, session, commission_id)

    return JSONResponse(await run_in_threadpool(work))


ROUTES = [Route("/api/v1/commissions/{commission_id}/explain", explain, methods=["GET"])]
