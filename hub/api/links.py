"""Referral links: `GET /r/{code}` for visitors, and the operator's link builder and stats."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route

from hub.api.http import field, hub_of, read_json, require_operator
from hub.api.openapi import register_body
from hub.attribution.clicks import is_bot, read_cookie, record_click, sign_cookie, visitor_hash
from hub.attribution.customers import can_attribute
from hub.attribution.links import (
    build_link,
    daily_clicks,
    default_landing,
    default_link,
    find_link,
    link_json,
    links_of,
    performance,
    program_landing,
    redirect_target,
    widget_link,
)
from hub.attribution.partners import get_partner
from hub.clock import clamp_day, utcnow
from hub.db.audit import record_action
from hub.errors import Unprocessable
from hub.runtime import Hub

log = logging.getLogger(__name__)


class AnyTextConvertor(Convertor[str]):
    """Like Starlette's `path`, but also across decoded control characters (``%0d%0a``), so
    every /r/... a visitor can send reaches the redirect instead of a 404 page."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anytext", AnyTextConvertor())


def _click(hub: Hub, code: str, visitor: str | None) -> tuple[str, str | None, int]:
    """(where to send the visitor, cookie value or None, cookie days); `visitor` None: a bot or
    a HEAD request, redirected without being counted."""
    config = hub.config
    with hub.transaction() as session:
        found = find_link(session, code)
        if found is None:
            return default_landing(config), None, 0
        link, partner = found
        program = hub.program(partner.program)
        if not can_attribute(hub, partner):  # the program's page still, but crediting nobody
            return program_landing(config, program), None, 0
        link = link or default_link(session, partner)
        program = hub.program(partner.program)
        if visitor is None:
            return redirect_target(config, link, partner, None, program), None, 0
        click = record_click(session, link, visitor, utcnow())
        days = hub.programs[partner.program].settings.cookie_days
        target = redirect_target(config, link, partner, click.id, program)
        return target, sign_cookie(hub, click.id, visitor), days


async def follow(request: Request) -> RedirectResponse:
    """A visitor follows a referral link: count the click, set the cookie, redirect (302).

    Unknown codes, inactive partners and any failure send the visitor to the default landing
    page: a visitor never sees an error page."""
    hub = hub_of(request)
    conf = hub.config.links
    agent = request.headers.get("user-agent", "")
    known = read_cookie(hub, request.cookies.get(conf.cookie_name))
    ip = request.client.host if request.client else ""
    visitor: str | None = known[1] if known else visitor_hash(hub, ip, agent)
    if request.method != "GET" or is_bot(agent):
        visitor = None  # link previews (often HEAD) and crawlers are not clicks
    try:
        target, cookie, days = await run_in_threadpool(
            _click, hub, request.path_params["link_code"], visitor)
    except Exception as exc:  # noqa: BLE001 - the visitor still lands somewhere useful
        log.error("click on %r failed: %s", request.path_params["link_code"], type(exc).__name__,
                  exc_info=exc)
        target, cookie, days = default_landing(hub.config), None, 0
    response = RedirectResponse(target, status_code=302, headers={"Cache-Control": "no-store"})
    if cookie:
        response.set_cookie(conf.cookie_name, cookie, max_age=days * 86400, path="/",
                            domain=conf.cookie_domain or None, httponly=True, samesite="lax",
                            secure=hub.config.server.base_url.startswith("https://"))
    return response


async def create(request: Request) -> JSONResponse:
    """Build a partner's link: 201 {code, url, html}; 422 outside the allowed domains.

    `{"kind": "widget"}` returns the partner's one widget link instead (201 the first time)."""
    actor = require_operator(request)
    data = await read_json(request)
    hub = hub_of(request)
    partner_id = request.path_params["partner_id"]
    kind = field(data, "kind", required=False, default="custom")
    args = dict(destination=field(data, "destination", required=False),
                trial_days=field(data, "trial_days", int, required=False),
                creative=field(data, "creative", required=False, default="plain"),
                description=field(data, "description", required=False, default=""))
    if kind not in ("custom", "widget"):
        raise Unprocessable("kind must be custom or widget", code="invalid_field")

    def work() -> tuple[dict[str, Any], bool]:
        with hub.transaction() as session:
            partner = get_partner(session, partner_id)
            if kind == "widget":
                link, created = widget_link(session, partner)
            else:
                link, created = build_link(hub.config, hub.programs[partner.program], session,
                                           partner, **args), True
            if created:
                record_action(session, actor, "link.create", partner.id, code=link.code,
                              destination=link.destination)
            return link_json(hub.config, link), created

    body, created = await run_in_threadpool(work)
    return JSONResponse(body, status_code=201 if created else 200)


def _date(raw: str | None, default: date) -> date:
    if raw is None:
        return default
    try:
        return clamp_day(date.fromisoformat(raw))
    except ValueError:
        raise Unprocessable("from and to are dates: YYYY-MM-DD", code="invalid_query") from None


async def listing(request: Request) -> JSONResponse:
    """A partner's links with clicks, unique clicks, signups and subscriptions over a date range
    (`from`, `to`: UTC dates, default the last 30 days), and its clicks per day."""
    require_operator(request)
    hub = hub_of(request)
    partner_id = request.path_params["partner_id"]
    today = utcnow().date()
    end = _date(request.query_params.get("to"), today)
    start = _date(request.query_params.get("from"), end - timedelta(days=29))

    def work() -> dict[str, Any]:
        with hub.transaction() as session:
            partner = get_partner(session, partner_id)
            default_link(session, partner)
            stats = performance(session, partner.id, start, end)
            links = links_of(session, partner.id)
            return {"from": start.isoformat(), "to": end.isoformat(),
                    "items": [link_json(hub.config, link, **stats[link.code]) for link in links],
                    "days": daily_clicks(session, partner.id, start, end)}

    return JSONResponse(await run_in_threadpool(work))


register_body("post", "/api/v1/partners/{partner_id}/links", {
    "type": "object",
    "properties": {"destination": {"type": "string", "format": "uri"},
                   "trial_days": {"type": "integer",
                                  "description": "one of the program's `trial_days` setting "
                                                 "(default 14 or 30)"},
                   "creative": {"type": "string",
                                "enum": ["plain", "banner", "logo", "screenshot", "text"]},
                   "description": {"type": "string", "maxLength": 200},
                   "kind": {"type": "string", "enum": ["custom", "widget"]}}})

ROUTES = [
    Route("/r/{link_code:anytext}", follow, methods=["GET"]),
    Route("/api/v1/partners/{partner_id}/links", create, methods=["POST"]),
    Route("/api/v1/partners/{partner_id}/links", listing, methods=["GET"]),
]
