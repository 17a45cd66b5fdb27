"""The event store: every provider event once, and the one path that turns it into money.

Recording the event and everything it causes happen in one transaction, so a crash leaves
either both or neither; the unique (provider, event id) turns a duplicate delivery (also a
concurrent one from another process) into a no-op.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from hub.attribution.customers import EVENT_CACHE
from hub.clock import utcnow
from hub.db.keys import one_of
from hub.db.models import ProviderEvent
from hub.db.upsert import insert_ignore, insert_ignore_many
from hub.ingest.apply import apply
from hub.runtime import Hub


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
    # A connector that would ask the provider about customers the hub has not attributed (a
    # network call) names them here and leaves the asking to `lookup`, which returns the event
    # read again with the answer. The group commit checks a whole batch's customers in one query
    # and hands only the unattributed ones back to their request, to look up outside any
    # transaction; other callers settle an item with `looked_up`.
    unless_attributed: tuple[tuple[str, str], ...] = ()
    lookup: Callable[[], Incoming] | None = None


def looked_up(item: Incoming) -> Incoming:
    """`item` with its provider look-up done, if it wants one (checking attribution itself)."""
    return item.lookup() if item.lookup is not None else item


def apply_event(hub: Hub, session: Session, item: Incoming) -> bool:
    """Record `item` and apply its facts in the caller's transaction. False for a duplicate.
    (`ingest` gives each event its own transaction; `hub.ingest.batch` applies many in one.)"""
    row_id = record(session, item.provider, item.event_id, item.type, item.occurred_at,
                    item.payload, outcome=_outcome(item))
    if row_id is None:
        return False
    apply_facts(hub, session, item.facts, row_id)
    return True


def apply_facts(hub: Hub, session: Session, facts: list[Any], row_id: int) -> None:
    """Apply the facts of the stored event `row_id`."""
    session.info[EVENT_CACHE] = {}
    try:
        for fact in facts:
            apply(hub, session, fact, row_id)
    finally:
        session.info.pop(EVENT_CACHE, None)


def _outcome(item: Incoming) -> str:
    return "processed" if item.facts else "ignored"


def record_many(session: Session, items: list[Incoming]) -> list[int | None]:
    """Store many events with one statement; per item its row id, or None for a duplicate
    (stored before, or earlier in `items`). Rows are written in key order, so two processes
    storing overlapping batches wait for each other instead of deadlocking."""
    now = utcnow()
    rows = {(i.provider, i.event_id): dict(
        provider=i.provider, event_id=i.event_id, type=i.type, occurred_at=i.occurred_at,
        received_at=now, outcome=_outcome(i),
        payload=i.payload if isinstance(i.payload, str) else json.dumps(
            i.payload, separators=(",", ":"))) for i in reversed(items)}
    stored = insert_ignore_many(session, ProviderEvent, [rows[k] for k in sorted(rows)],
                                ("provider", "event_id"))
    out: list[int | None] = []
    for item in items:
        out.append(stored.pop((item.provider, item.event_id), None))
    return out


def stored_event_ids(session: Session, provider: str, event_ids: list[str]) -> set[str]:
    """Which of `event_ids` the hub already holds (one query for a whole replay batch)."""
    if not event_ids:
        return set()
    return set(session.scalars(_stored_ids_statement(session.get_bind().dialect.name),
                               {"provider": provider, "ids": event_ids}))


@functools.cache
def _stored_ids_statement(dialect: str) -> Any:
    return select(ProviderEvent.event_id).where(ProviderEvent.provider == bindparam("provider"),
                                                one_of(dialect, ProviderEvent.event_id, "ids"))
