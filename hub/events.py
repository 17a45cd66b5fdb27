"""The event store: every provider event once, and the one path that turns it into money.

Recording the event and everything it causes happen in one transaction, so a crash leaves
either both or neither; the unique (provider, event id) turns a duplicate delivery (also a
concurrent one from another process) into a no-op.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from .attribution import EVENT_CACHE
from .clock import utcnow
from .db.models import ProviderEvent
from .db.upsert import insert_ignore
from .dispatch import apply
from .runtime import Hub


def record(session: Session, provider: str, event_id: str, type_: str, occurred_at: datetime,
           payload: str | dict[str, Any], outcome: str = "processed") -> int | None:
    """Store the event; its row id, or None when it was stored before (a duplicate)."""
    text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    row_id = insert_ignore(session, ProviderEvent, dict(
        provider=provider, event_id=event_id, type=type_, occurred_at=occurred_at,
        received_at=utcnow(), payload=text, outcome=outcome))
    return None if row_id is None else int(row_id)


def ingest(hub: Hub, provider: str, event_id: str, type_: str, occurred_at: datetime,
           payload: str | dict[str, Any], facts: Iterable[Any]) -> bool:
    """Record an event and apply its facts in one transaction. False for a duplicate."""
    facts = list(facts)
    with hub.transaction() as session:
        row_id = record(session, provider, event_id, type_, occurred_at, payload,
                        outcome="processed" if facts else "ignored")
        if row_id is None:
            return False
        session.info[EVENT_CACHE] = {}
        try:
            for fact in facts:
                apply(hub, session, fact, row_id)
        finally:
            session.info.pop(EVENT_CACHE, None)
    return True
