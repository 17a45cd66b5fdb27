"""The tracking script for the merchant's own site: `GET /track.js` and the click it records
(`POST /api/v1/track/clicks`, called by the script from the merchant's pages).

The click follows the model of `GET /r/{code}` (`hub.attribution.clicks`): unique per visitor
per link per 30 days, bots excluded by user agent, the program's cookie window. The difference
is where the cookie lives: the script keeps the signed value the hub returns in a first-party
cookie on the merchant's site, and sends it back on the next referred visit, so the visitor is
recognised as `/r/` recognises its own cookie. Only pages on `[server] allowed_domains` may call
the hub (checked on the Origin header, not left to the browser's CORS alone: a `text/plain` POST
is a simple request that a browser sends without asking first).
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timedelta
from functools import cache
from importlib.resources import files
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub.api.http import hub_of, read_body
from hub.api.openapi import register_body
from hub.attribution.clicks import is_bot, read_cookie, record_click, sign_cookie, visitor_hash
from hub.attribution.customers import can_attribute
from hub.attribution.links import PARAM_CLICK, clean_destination, default_link, find_link
from hub.clock import utcnow
from hub.config import Config
from hub.db.models import Click, Partner
from hub.errors import BadRequest
from hub.runtime import Hub

log = logging.getLogger(__name__)

CLICKS_PATH = "/api/v1/track/clicks"
_CONFIG_RE = ("/*hub:config*/", "/*hub:end*/")
# With the version in the URL the script may be cached for a year; without it, a day (and the
# ETag answers the revalidation with a 304).
LONG_CACHE = "public, max-age=31536000, immutable"
SHORT_CACHE = "public, max-age=86400"
MAX_CODE = 200


@cache
def _source() -> str:
    return files("hub.api").joinpath("assets/track.js").read_text(encoding="utf-8")


def script_text(config: Config) -> str:
    """The script with this hub's settings written in (query names, cookie, endpoint)."""
    source = _source()
    start = source.index(_CONFIG_RE[0])
    end = source.index(_CONFIG_RE[1]) + len(_CONFIG_RE[1])
    settings = {"params": list(config.links.track_params), "click": PARAM_CLICK,
                "cookie": config.links.track_cookie, "endpoint": CLICKS_PATH}
    return source[:start] + json.dumps(settings) + source[end:]


def script_version(config: Config) -> str:
    return hashlib.sha256(script_text(config).encode()).hexdigest()[:16]


def script_url(config: Config) -> str:
    return f"{config.server.base_url.rstrip('/')}/track.js?v={script_version(config)}"


def script_snippet(config: Config) -> str:
    """What the operator pastes into the merchant's pages."""
    return f'<script src="{script_url(config)}" defer></script>'


async def track_js(request: Request) -> Response:
    """The tracking script (JavaScript). Cached for a year when asked with its version (`?v=`),
    else for a day with an ETag."""
    config = hub_of(request).config
    version = script_version(config)
    etag = f'"{version}"'
    versioned = request.query_params.get("v") == version
    headers = {"ETag": etag, "Cache-Control": LONG_CACHE if versioned else SHORT_CACHE,
               "X-Content-Type-Options": "nosniff",
               "Cross-Origin-Resource-Policy": "cross-origin"}
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(script_text(config), media_type="text/javascript; charset=utf-8",
                    headers=headers)


def allowed_origin(config: Config, origin: str | None) -> str | None:
    """The Origin when it is a page on one of `[server] allowed_domains` (or a subdomain)."""
    if not origin or origin == "null":
        return None
    return origin if clean_destination(origin + "/", config.server.allowed_domains) else None


def _cors(origin: str) -> dict[str, str]:
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
            "Access-Control-Allow-Methods": "POST", "Access-Control-Allow-Headers": "Content-Type",
            "Access-Control-Max-Age": "86400"}


def _refused(config: Config) -> JSONResponse:
    hint = ("" if config.server.allowed_domains else
            " (no [server] allowed_domains is configured)")
    return JSONResponse({"error": {"code": "origin_not_allowed",
                                   "message": "this page's origin is not one of [server] "
                                              f"allowed_domains{hint}"}},
                        status_code=403, headers={"Vary": "Origin"})


async def preflight(request: Request) -> Response:
    """CORS preflight: answered only for pages on the allowed domains."""
    config = hub_of(request).config
    origin = allowed_origin(config, request.headers.get("origin"))
    if origin is None:
        return _refused(config)
    return Response(status_code=204, headers=_cors(origin))


def _text(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_CODE * 2:
        raise BadRequest(f"{name} must be a short string", code="invalid_field")
    return value.strip()


def _adopt(hub: Hub, session: Any, click_id: str, code: str, at: datetime) -> Click | None:
    """A click `/r/` already recorded (its redirect adds `click_id`), when it belongs to `code`
    and is still inside its window: the script keeps it rather than counting the visit twice."""
    click = session.get(Click, click_id)
    if click is None:
        return None
    partner = session.get(Partner, click.partner_id)
    program = hub.program(click.program)
    if partner is None or program is None or code not in (partner.code, click.link_code):
        return None
    if at - click.clicked_at > timedelta(days=program.settings.cookie_days):
        return None
    return click  # type: ignore[no-any-return]


def _record(hub: Hub, code: str, click_id: str | None, visitor: str) -> dict[str, Any]:
    at = utcnow()
    with hub.transaction() as session:
        found = find_link(session, code)
        if found is None or not can_attribute(hub, found[1]):
            return {"referral": None}
        link, partner = found
        click = _adopt(hub, session, click_id, code, at) if click_id else None
        if click is None:
            click = record_click(session, link or default_link(session, partner), visitor, at)
        days = hub.programs[click.program].settings.cookie_days
        remaining = timedelta(days=days) - (at - click.clicked_at)
        return {"referral": click.id, "cookie": sign_cookie(hub, click.id, click.visitor),
                "max_age": max(1, int(remaining.total_seconds()))}


async def track_click(request: Request) -> Response:
    """Record a click from the tracking script on a merchant's page.

    Body (JSON, sent as text/plain): `code` (the `?via=`/`?ref=` value), optional `click` (the
    `click_id` a `/r/` redirect added) and `cookie` (the value kept from an earlier visit).
    Answers `{referral, cookie, max_age}`, or `{referral: null}` for an unknown code or a bot;
    403 for a page outside `[server] allowed_domains`."""
    hub = hub_of(request)
    origin = allowed_origin(hub.config, request.headers.get("origin"))
    if origin is None:
        return _refused(hub.config)
    headers = _cors(origin)
    try:
        data = json.loads(await read_body(request, 4096) or b"null")
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object", code="invalid_json")
    code, click_id = _text(data, "code"), _text(data, "click")
    agent = request.headers.get("user-agent", "")
    if not code or len(code) > MAX_CODE or is_bot(agent):
        return JSONResponse({"referral": None}, headers=headers)
    known = read_cookie(hub, _text(data, "cookie"))
    ip = request.client.host if request.client else ""
    visitor = known[1] if known else visitor_hash(hub, ip, agent)
    try:
        body = await run_in_threadpool(_record, hub, code, click_id, visitor)
    except Exception as exc:  # noqa: BLE001 - the merchant's page must never break on the hub
        log.error("tracked click on %r failed: %s", code[:40], type(exc).__name__, exc_info=exc)
        body = {"referral": None}
    return JSONResponse(body, headers={**headers, "Cache-Control": "no-store"})


register_body("post", CLICKS_PATH, {
    "type": "object", "required": ["code"],
    "properties": {"code": {"type": "string", "maxLength": MAX_CODE},
                   "click": {"type": "string"}, "cookie": {"type": "string"}}})

ROUTES = [
    Route("/track.js", track_js, methods=["GET"]),
    Route(CLICKS_PATH, track_click, methods=["POST"]),
    Route(CLICKS_PATH, preflight, methods=["OPTIONS"]),
]
