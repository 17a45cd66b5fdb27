"""/admin/commissions/{id}: the whole derivation of one commission line, for the operator: the
rule, the settings hash in force and whether the program's settings changed since, every input
in words and as stored, the provider event with the fields used, the payment or install, and
the lines it reverses or that reverse it. The same data as `GET /api/v1/commissions/{id}/explain`
(`hub.ledger.explain.explain_commission`), rendered."""

from __future__ import annotations

import json

from starlette.responses import Response
from starlette.routing import Route

from hub.ledger.explain import explain_commission
from hub.web.admin import page
from hub.web.pages import View


def derivation(view: View) -> Response:
    """One commission line explained."""
    body = explain_commission(view.hub, view.db, view.request.path_params["commission_id"])
    inputs = json.dumps(body["derivation"]["inputs"], indent=2, sort_keys=True, default=str)
    return view.page("admin_commission.html", title=f"Commission {body['id']}", line=body,
                     inputs_json=inputs)


ROUTES = [Route("/admin/commissions/{commission_id}", page(derivation), methods=["GET"])]
