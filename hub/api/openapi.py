"""The OpenAPI document, built from the app's routes and their docstrings.

Request bodies are described by `BODIES`, keyed by (method, path); everything else comes from
the routes themselves, so a route cannot exist without appearing here.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from starlette.routing import BaseRoute, Mount, Route

from hub import __version__

_STR = {"type": "string"}
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/api/v1/partners"): {
        "type": "object", "required": ["program", "email"],
        "properties": {"program": _STR, "email": _STR, "name": _STR,
                       "kind": _STR, "paypal_email": _STR, "code": _STR,
                       "invited": {"type": "boolean"}, "customer_ref": _STR, "website": _STR,
                       "payout_method": {"type": "string", "enum": ["paypal", "manual"]}}},
    ("patch", "/api/v1/partners/{partner_id}"): {
        "type": "object",
        "properties": {"payout_method": {"type": "string", "enum": ["paypal", "manual"]},
                       "paypal_email": {"type": "string", "nullable": True}, "note": _STR}},
}
_DATE = {"type": "string", "format": "date"}
# Query parameters per (method, path): documented so clients and the fuzzer find them.
QUERIES: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/api/v1/partners"): {"program": _STR, "status": _STR, "q": _STR},
    ("get", "/api/v1/payouts"): {"partner_id": _STR, "status": _STR, "method": _STR,
                                 "program": _STR, "currency": _STR, "period": _STR},
    ("get", "/api/v1/partners/{partner_id}/links"): {"from": _DATE, "to": _DATE},
    ("get", "/api/v1/referrals"): {"partner_id": _STR, "program": _STR, "source": _STR,
                                   "flagged": {"type": "boolean"}},
    ("get", "/api/v1/webhooks/deliveries"): {"endpoint_id": _STR, "status": _STR,
                                             "event_type": _STR},
    ("get", "/download/{product}"): {"code": _STR},
    ("get", "/admin/audit"): {"subject": _STR, "page": {"type": "integer"}},
    ("get", "/admin/partners"): {"program": _STR, "status": _STR, "q": _STR,
                                 "page": {"type": "integer"}},
    ("get", "/portal/transactions"): {"page": {"type": "integer"}},
}
SECURED_PREFIXES = ("/api/v1/partners", "/api/v1/payouts", "/api/v1/commissions",
                    "/api/v1/webhooks", "/api/v1/referrals", "/api/v1/customers", "/admin")


def register_body(method: str, path: str, schema: dict[str, Any]) -> None:
    BODIES[(method.lower(), path)] = schema


def openapi_document(routes: list[BaseRoute]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in _flatten(routes):
        for method in sorted((route.methods or set()) - {"HEAD"}):
            op = _operation(route, method.lower())
            # "{code:path}" is Starlette's convertor syntax; OpenAPI names the parameter only.
            paths.setdefault(re.sub(r":\w+}", "}", route.path), {})[method.lower()] = op
    return {
        "openapi": "3.0.3",
        "info": {"title": "partner hub", "version": __version__},
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {"operator": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "properties": {"error": {
                "type": "object", "properties": {"code": _STR, "message": _STR}}}}},
        },
    }


def _flatten(routes: list[BaseRoute], prefix: str = "") -> list[Route]:
    out: list[Route] = []
    for route in routes:
        if isinstance(route, Mount):
            out.extend(_flatten(list(route.routes), prefix + route.path))
        elif isinstance(route, Route):
            out.append(route if not prefix else Route(prefix + route.path, route.endpoint,
                                                      methods=list(route.methods or [])))
    return out


def _operation(route: Route, method: str) -> dict[str, Any]:
    doc = inspect.getdoc(route.endpoint) or ""
    op: dict[str, Any] = {
        "summary": doc.splitlines()[0] if doc else route.name,
        "operationId": f"{method}_{route.path}".replace("/", "_").replace("{", "").replace("}", ""),
        "responses": {"200": {"description": "OK"},
                      "4XX": {"description": "Error",
                              "content": {"application/json": {
                                  "schema": {"$ref": "#/components/schemas/Error"}}}}},
    }
    params = [p.strip("{}").split(":")[0] for p in route.path.split("/") if p.startswith("{")]
    parameters = [{"name": p, "in": "path", "required": True, "schema": _STR} for p in params]
    parameters += [{"name": name, "in": "query", "required": False, "schema": schema}
                   for name, schema in QUERIES.get((method, route.path), {}).items()]
    if parameters:
        op["parameters"] = parameters
    body = BODIES.get((method, route.path))
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if route.path.startswith(SECURED_PREFIXES):
        op["security"] = [{"operator": []}]
    return op
