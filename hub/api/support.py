"""/api/v1/customers/{provider}/{customer_ref}/support: who answers a customer's support request.

For the product's own support desk: OdooPBX redirects a customer's request to the partner who
brought the customer (partners whose kind receives support); everyone else gets the operator's
support contact. See `hub.attribution.support`.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub.api.http import hub_of, require_operator
from hub.api.openapi import QUERIES
from hub.attribution.support import support_for

PATH = "/api/v1/customers/{provider}/{customer_ref}/support"


async def support(request: Request) -> JSONResponse:
    """Who supports this customer: its partner (`routed_to: partner`) or the operator.

    The partner's public contact (id, name, e-mail, website) when the customer was referred by an
    active partner whose kind receives support; else the program's support contact. `program`
    narrows the look-up to one program. 404 for an unknown customer, 422 for an unknown provider.
    """
    require_operator(request)
    hub = hub_of(request)
    provider, ref = request.path_params["provider"], request.path_params["customer_ref"]
    program = request.query_params.get("program") or None

    def work() -> dict[str, Any]:
        with hub.sessions() as session:
            return support_for(hub, session, provider, ref, program)

    body = await run_in_threadpool(work)
    return JSONResponse({"provider": provider, "customer_ref": ref, **body})


QUERIES[("get", PATH)] = {"program": {"type": "string"}}
ROUTES = [Route(PATH, support, methods=["GET"])]
