"""`INSERT ... ON CONFLICT DO NOTHING` for both dialects: the primitive behind idempotency.

Two processes racing to insert the same unique key both succeed as statements; exactly one row
exists afterwards and exactly one of them learns it inserted it.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignore(session: Session, model: type[Any], values: dict[str, Any]) -> Any:
    """Insert one row unless a unique key already holds it. Returns the new row's primary key
    when this call inserted it (truthy), else None: callers need no second query for the id."""
    # RETURNING, not rowcount: drivers report -1 for INSERT .. ON CONFLICT on some paths.
    stmt = _ignore_statement(session.get_bind().dialect.name, model.__table__)
    row = session.execute(stmt, values).first()
    return None if row is None else row[0]


@functools.lru_cache(maxsize=None)
def _ignore_statement(dialect: str, table: Any) -> Any:
    """Built once per table: the values travel as parameters, so the hot path neither rebuilds
    the statement nor recomputes its cache key."""
    pk = list(table.primary_key.columns)[0]
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing().returning(pk)


def insert_ignore_row(session: Session, model: type[Any], values: dict[str, Any]) -> Any:
    """Like `insert_ignore`, but returns the inserted ORM object (None for a duplicate), so the
    caller needs no re-select of what it just wrote."""
    stmt = (_insert(session, model).values(**values).on_conflict_do_nothing()
            .returning(model))
    return session.scalars(stmt).first()


def _insert(session: Session, model: type[Any]) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(model)
