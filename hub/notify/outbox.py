"""The outbox: what must reach the outside once a change commits.

An event is written as one `webhook_deliveries` row per endpoint that wants it, in the same
transaction as the change it reports; a message to deliver each row is handed to the queue after
the commit (`hub.runtime.send_after_commit`), and `hub tick` re-sends rows left pending. The
ledger and the payouts write here and know nothing of HTTP or the queue; `hub.notify.webhooks`
delivers. The event id is derived from its cause, so an event emitted twice (a replayed
provider event) is delivered once.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.clock import utcnow
from hub.db.models import WebhookDelivery, WebhookEndpoint, new_id
from hub.db.upsert import insert_ignore
from hub.runtime import send_after_commit

EVENTS = ("commission.created", "commission.voided", "commission.reinstated", "payout.requested",
          "payout.paid", "payout.failed", "partner.created")


_CACHE = "hub_webhook_endpoints"


def emit(session: Session, event_type: str, key: str, data: dict[str, Any]) -> int:
    """Queue `event_type` for every endpoint that wants it; `key` names the cause (stable across
    replays). Returns how many deliveries were written."""
    targets = [e for e in _endpoints(session) if not e.events or event_type in e.events]
    if not targets:
        return 0
    event_id = "evt_" + hashlib.sha256(f"{event_type}:{key}".encode()).hexdigest()[:24]
    body = json.dumps({"id": event_id, "type": event_type, "created": int(time.time()),
                       "data": data}, separators=(",", ":"), sort_keys=True, default=str)
    written = 0
    for endpoint in targets:
        delivery_id, now = new_id("wd"), utcnow()
        if insert_ignore(session, WebhookDelivery, dict(
                id=delivery_id, endpoint_id=endpoint.id, event_id=event_id,
                event_type=event_type, payload=body, status="pending", attempts=0,
                created_at=now, updated_at=now)):
            send_after_commit(session, "webhook.deliver", delivery_id)
            written += 1
    return written


def wanted(session: Session, event_type: str) -> bool:
    """Whether any active endpoint takes `event_type` (a batch skips building payloads if not)."""
    return any(not e.events or event_type in e.events for e in _endpoints(session))


def endpoints_read(session: Session) -> Any:
    """The statement of the active endpoints (id and events), for a caller that reads them
    together with other things (`hub.db.pipelined.run_together`) and hands the rows to
    `know_endpoints`; None when this transaction has them already."""
    if _CACHE in session.info:
        return None
    return _ACTIVE


def know_endpoints(session: Session, rows: list[Any]) -> None:
    session.info.setdefault(_CACHE, rows)


_ACTIVE = select(WebhookEndpoint.id, WebhookEndpoint.events).where(WebhookEndpoint.active)


def _endpoints(session: Session) -> list[WebhookEndpoint]:
    """Active endpoints, read once per transaction (a replay books thousands of lines)."""
    cached = session.info.get(_CACHE)
    if cached is None:
        cached = list(session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.active)))
        session.info[_CACHE] = cached
    return cached  # type: ignore[no-any-return]


def stale_deliveries(session: Session, before: datetime) -> list[str]:
    return list(session.scalars(select(WebhookDelivery.id).where(
        WebhookDelivery.status == "pending", WebhookDelivery.updated_at < before)))
