"""The event store: every provider event once, and the one path that turns it into money.

Recording the event and everything it causes happen in one transaction, so a crash leaves
either both or neither; the unique (provider, event id) turns a duplicate delivery (also a
concurrent one from another process) into a no-op.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

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
    with hub.transaction() as session:
        return apply_event(hub, session, Incoming(provider, event_id, type_, occurred_at, payload,
                                                  list(facts)))


@dataclass(frozen=True)
class Incoming:
    """A provider event as a connector read it: what `record` stores and the facts it holds."""

    provider: str
    event_id: str
    type: str
    occurred_at: datetime
    payload: str | dict[str, Any]
    facts: list[Any]


def apply_event(hub: Hub, session: Session, item: Incoming) -> bool:
    """Record `item` and apply its facts in the caller's transaction. False for a duplicate.
    (`ingest` gives each event its own transaction; `hub replay` puts a batch in one.)"""
    row_id = record(session, item.provider, item.event_id, item.type, item.occurred_at,
                    item.payload, outcome="processed" if item.facts else "ignored")
    if row_id is None:
        return False
    session.info[EVENT_CACHE] = {}
    try:
        for fact in item.facts:
            apply(hub, session, fact, row_id)
    finally:
        session.info.pop(EVENT_CACHE, None)
    return True


def stored_event_ids(session: Session, provider: str, event_ids: list[str]) -> set[str]:
    """Which of `event_ids` the hub already holds (one query for a whole replay batch)."""
    if not event_ids:
        return set()
    return set(session.scalars(select(ProviderEvent.event_id).where(
        ProviderEvent.provider == provider, ProviderEvent.event_id.in_(event_ids))))
