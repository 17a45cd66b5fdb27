"""Webhooks out: operators register endpoints; the hub tells them what happened, signed.

Events are written to the outbox (`hub.notify.outbox`) in the transaction of their cause; the
`webhook.deliver` job posts each delivery after the commit, retrying with backoff, and the row
is the delivery log the operator reads and replays.

Signature: ``Hub-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any

import httpx
from sqlalchemy.orm import Session

from hub.clock import utcnow
from hub.db.models import WebhookDelivery, WebhookEndpoint, new_id
from hub.errors import TransientError
from hub.notify.outbox import _CACHE
from hub.runtime import Hub, send_after_commit

SIGNATURE_HEADER = "Hub-Signature"


TOLERANCE_SECONDS = 300


def new_secret() -> str:
    return "whsec_" + secrets.token_hex(24)


def sign(secret: str, timestamp: int, body: str | bytes) -> str:
    """The `Hub-Signature` header value for `body` sent at `timestamp`."""
    raw = body.encode() if isinstance(body, str) else body
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str | None, body: bytes, *, now: float | None = None,
           tolerance: int = TOLERANCE_SECONDS) -> bool:
    """What a receiver does: recompute the HMAC and refuse stale or future timestamps."""
    parts = dict(p.split("=", 1) for p in (header or "").split(",") if "=" in p)
    stamp = parts.get("t", "")
    if not stamp.isdigit() or "v1" not in parts:
        return False
    if abs((time.time() if now is None else now) - int(stamp)) > tolerance:
        return False
    expected = sign(secret, int(stamp), body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts["v1"])


def register_endpoint(session: Session, url: str, events: list[str],
                      secret: str | None) -> WebhookEndpoint:
    endpoint = WebhookEndpoint(id=new_id("we"), url=url, secret=secret or new_secret(),
                               events=list(events), active=True, created_at=utcnow())
    session.add(endpoint)
    session.info.pop(_CACHE, None)
    session.flush()
    return endpoint


def deliver(hub: Hub, delivery_id: str) -> None:
    """POST one delivery. Anything but a 2xx is retried with backoff."""
    with hub.sessions() as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        endpoint = session.get(WebhookEndpoint, delivery.endpoint_id) if delivery else None
    if delivery is None or endpoint is None or delivery.status == "delivered":
        return
    headers = {"Content-Type": "application/json", "User-Agent": "partner-hub",
               SIGNATURE_HEADER: sign(endpoint.secret, int(time.time()), delivery.payload),
               "Hub-Event": delivery.event_type, "Hub-Delivery": delivery.id}
    try:
        response = httpx.post(endpoint.url, content=delivery.payload.encode(), headers=headers,
                              timeout=10.0)
    except httpx.HTTPError as exc:
        _record(hub, delivery_id, None, f"{type(exc).__name__}: {exc}"[:500])
        raise TransientError(f"delivery {delivery_id}: {type(exc).__name__}") from None
    ok = 200 <= response.status_code < 300
    _record(hub, delivery_id, response.status_code, None if ok else f"HTTP {response.status_code}")
    if not ok:
        raise TransientError(f"delivery {delivery_id}: HTTP {response.status_code}")


def _record(hub: Hub, delivery_id: str, status_code: int | None, error: str | None) -> None:
    with hub.transaction() as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        if delivery is None:
            return
        now = utcnow()
        delivery.attempts += 1
        delivery.response_status, delivery.last_error, delivery.updated_at = status_code, error, now
        if error is None:
            delivery.status, delivery.delivered_at = "delivered", now


def dead_letter(hub: Hub, message: dict[str, Any], retry_info: dict[str, Any]) -> None:
    """Retries ran out: the delivery stays in the log as `failed`, replayable by the operator."""
    delivery_id = (message.get("args") or [None])[0]
    with hub.transaction() as session:
        delivery = session.get(WebhookDelivery, delivery_id) if delivery_id else None
        if delivery is not None and delivery.status != "delivered":
            delivery.status, delivery.updated_at = "failed", utcnow()


def replay(session: Session, delivery_id: str) -> WebhookDelivery | None:
    """Send a delivery again (whatever its status); same event id, fresh signature."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        return None
    delivery.status, delivery.updated_at = "pending", utcnow()
    send_after_commit(session, "webhook.deliver", delivery.id)
    return delivery


def delivery_json(d: WebhookDelivery) -> dict[str, Any]:
    return {"id": d.id, "endpoint_id": d.endpoint_id, "event_id": d.event_id,
            "event_type": d.event_type, "status": d.status, "attempts": d.attempts,
            "response_status": d.response_status, "last_error": d.last_error,
            "created_at": d.created_at.isoformat(), "updated_at": d.updated_at.isoformat(),
            "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
            "payload": json.loads(d.payload)}


def endpoint_json(e: WebhookEndpoint, *, with_secret: bool = False) -> dict[str, Any]:
    out = {"id": e.id, "url": e.url, "events": list(e.events or []), "active": e.active,
           "created_at": e.created_at.isoformat()}
    if with_secret:
        out["secret"] = e.secret
    return out
