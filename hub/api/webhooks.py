"""/api/v1/webhooks: operators register endpoints, read the delivery log and replay deliveries."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub.api.http import field, hub_of, read_json, require_operator
from hub.api.openapi import register_body
from hub.db.audit import record_action
from hub.db.models import WebhookDelivery, WebhookEndpoint
from hub.errors import NotFound, Unprocessable
from hub.notify import outbox
from hub.notify import webhooks as webhooks_out


async def create_endpoint(request: Request) -> JSONResponse:
    """Register a receiver; the answer holds its signing secret (shown this once)."""
    actor = require_operator(request)
    data = await read_json(request)
    url = field(data, "url")
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        raise Unprocessable("url must be an http(s) URL", code="invalid_url")
    events = field(data, "events", list, required=False, default=[])
    unknown = [e for e in events if e not in outbox.EVENTS]
    if unknown:
        known = ", ".join(outbox.EVENTS)
        raise Unprocessable(f"unknown event {unknown[0]!r}; known: {known}",
                            code="invalid_event")
    secret = field(data, "secret", required=False)
    hub = hub_of(request)

    def work() -> dict[str, Any]:
        with hub.transaction() as session:
            endpoint = webhooks_out.register_endpoint(session, url, events, secret)
            record_action(session, actor, "webhook_endpoint.create", endpoint.id, url=url,
                          events=events)
            return webhooks_out.endpoint_json(endpoint, with_secret=True)

    return JSONResponse(await run_in_threadpool(work), status_code=201)


async def list_endpoints(request: Request) -> JSONResponse:
    """Registered receivers (without their secrets)."""
    require_operator(request)
    hub = hub_of(request)

    def work() -> dict[str, Any]:
        with hub.sessions() as session:
            rows = session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.created_at))
            return {"items": [webhooks_out.endpoint_json(e) for e in rows]}

    return JSONResponse(await run_in_threadpool(work))


async def disable_endpoint(request: Request) -> JSONResponse:
    """Stop sending to a receiver (its delivery log stays)."""
    actor = require_operator(request)
    hub = hub_of(request)

    def work() -> dict[str, Any]:
        with hub.transaction() as session:
            endpoint = session.get(WebhookEndpoint, request.path_params["endpoint_id"])
            if endpoint is None:
                raise NotFound("no such endpoint")
            endpoint.active = False
            record_action(session, actor, "webhook_endpoint.disable", endpoint.id)
            return webhooks_out.endpoint_json(endpoint)

    return JSONResponse(await run_in_threadpool(work))


async def deliveries(request: Request) -> JSONResponse:
    """The delivery log, newest first, by endpoint_id, status or event_type."""
    require_operator(request)
    hub = hub_of(request)
    q = request.query_params

    def work() -> dict[str, Any]:
        stmt = select(WebhookDelivery).order_by(WebhookDelivery.created_at.desc()).limit(1000)
        for name in ("endpoint_id", "status", "event_type"):
            if q.get(name):
                stmt = stmt.where(getattr(WebhookDelivery, name) == q[name])
        with hub.sessions() as session:
            return {"items": [webhooks_out.delivery_json(d) for d in session.scalars(stmt)]}

    return JSONResponse(await run_in_threadpool(work))


async def replay(request: Request) -> JSONResponse:
    """Deliver one logged event again (same event id, fresh signature)."""
    actor = require_operator(request)
    hub = hub_of(request)

    def work() -> dict[str, Any]:
        with hub.transaction() as session:
            delivery = webhooks_out.replay(session, request.path_params["delivery_id"])
            if delivery is None:
                raise NotFound("no such delivery")
            record_action(session, actor, "webhook_delivery.replay", delivery.id)
            return webhooks_out.delivery_json(delivery)

    return JSONResponse(await run_in_threadpool(work), status_code=202)


register_body("post", "/api/v1/webhooks/endpoints", {
    "type": "object", "required": ["url"],
    "properties": {"url": {"type": "string"}, "secret": {"type": "string"},
                   "events": {"type": "array", "items": {"type": "string",
                                                         "enum": list(outbox.EVENTS)}}}})

ROUTES = [
    Route("/api/v1/webhooks/endpoints", create_endpoint, methods=["POST"]),
    Route("/api/v1/webhooks/endpoints", list_endpoints, methods=["GET"]),
    Route("/api/v1/webhooks/endpoints/{endpoint_id}/disable", disable_endpoint, methods=["POST"]),
    Route("/api/v1/webhooks/deliveries", deliveries, methods=["GET"]),
    Route("/api/v1/webhooks/deliveries/{delivery_id}/replay", replay, methods=["POST"]),
]
