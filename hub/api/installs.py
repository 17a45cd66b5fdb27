"""POST /api/v1/installs: installers report an installation with the partner code it carries."""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub.api.http import field, hub_of, provider_field, read_json
from hub.api.openapi import register_body
from hub.clock import parse_instant, utcnow
from hub.errors import Forbidden, Unauthorized, Unprocessable
from hub.facts import InstallReported
from hub.ingest.events import ingest

INSTALLER = "installer"


def _plain(secret: object) -> str:
    return str(getattr(secret, "value", secret) or "")


def check_installer_token(request: Request, *, signups: bool = False) -> None:
    """Installs and signups bind customers and earn money, so they are accepted only from the
    product's own servers: `Authorization: Bearer <[server] installer_token>` (for signups also
    `[server] signups_token`, when the operator keeps a separate one). With no token configured
    the call is refused (403) naming the setting, never accepted unauthenticated."""
    server = hub_of(request).config.server
    tokens = [t for t in (_plain(server.installer_token),
                          _plain(server.signups_token) if signups else "") if t]
    if not tokens:
        setting = ("[server] installer_token (or [server] signups_token)" if signups
                   else "[server] installer_token")
        raise Forbidden(f"this hub accepts no {'signups' if signups else 'installs'} until the "
                        f"operator sets {setting}", code="installer_token_not_configured")
    scheme, _, sent = request.headers.get("authorization", "").partition(" ")
    ok = False
    for token in tokens:  # compare with every token, so timing does not tell which one matched
        ok |= hmac.compare_digest(sent.strip().encode(), token.encode())
    if scheme.lower() != "bearer" or not ok:
        raise Unauthorized("installer token required: Authorization: Bearer <[server] "
                           "installer_token>")


def _occurred_at(raw: str | None) -> datetime:
    """When the installation happened: an installer that reports late (offline, queued) says so,
    because install rules count business time; never in the future."""
    now = utcnow()
    if raw is None:
        return now
    try:
        when = parse_instant(raw)
    except ValueError:
        raise Unprocessable("occurred_at must be an ISO-8601 time", code="invalid_field") from None
    if when > now + timedelta(minutes=5):
        raise Unprocessable("occurred_at is in the future", code="invalid_field")
    return when


async def report_install(request: Request) -> JSONResponse:
    """An installation: 201 the first time, 200 for a repeat of the same install_id."""
    check_installer_token(request)
    data = await read_json(request)
    hub = hub_of(request)
    fact = InstallReported(
        install_id=field(data, "install_id"), product=field(data, "product"),
        partner_code=field(data, "partner_code", required=False),
        site=field(data, "site", required=False),
        customer_ref=field(data, "customer_ref", required=False),
        customer_provider=provider_field(hub, data),
        occurred_at=_occurred_at(field(data, "occurred_at", required=False)))

    def work() -> bool:
        return ingest(hub, INSTALLER, fact.install_id, "install.reported", fact.occurred_at,
                      data, [fact])

    new = await run_in_threadpool(work)
    body: dict[str, Any] = {"install_id": fact.install_id, "created": new}
    return JSONResponse(body, status_code=201 if new else 200)


register_body("post", "/api/v1/installs", {
    "type": "object", "required": ["install_id", "product"],
    "properties": {k: {"type": "string"} for k in
                   ("install_id", "partner_code", "product", "site", "customer_ref", "provider",
                    "occurred_at")}})

ROUTES = [Route("/api/v1/installs", report_install, methods=["POST"])]
