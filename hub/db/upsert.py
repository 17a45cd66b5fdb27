"""`INSERT ... ON CONFLICT DO NOTHING` for both dialects: the primitive behind idempotency.

Two processes racing to insert the same unique key both succeed as statements; exactly one row
exists afterwards and exactly one of them learns it inserted it.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, make_transient_to_detached


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
    """Like `insert_ignore`, but returns the inserted row as an ORM object in `session` (None for
    a duplicate), so the caller needs no re-select of what it just wrote."""
    stmt = _row_statement(session.get_bind().dialect.name, model.__table__)
    row = session.execute(stmt, values).first()
    if row is None:
        return None
    # The row as the database returned it (defaults included) becomes a persistent object
    # without another round trip: the ORM's own INSERT .. RETURNING costs several times more.
    obj = model(**row._asdict())
    make_transient_to_detached(obj)
    session.add(obj)
    return obj


@functools.lru_cache(maxsize=None)
def _row_statement(dialect: str, table: Any) -> Any:
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing().returning(*table.c)


def insert_ignore_many(session: Session, model: type[Any], rows: list[dict[str, Any]],
                       key: tuple[str, ...], returning: tuple[str, ...] = ()) -> dict[Any, Any]:
    """`insert_ignore` for many rows in one statement: {key values: primary key} of the rows this
    call inserted (with `returning`: {key values: (those columns)}). Rows whose key is held
    already are left out, as are repeats of a key within `rows` after its first."""
    if not rows:
        return {}
    table = model.__table__
    pk = list(table.primary_key.columns)[0]
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    columns = [table.c[k] for k in key] + ([table.c[c] for c in returning] or [pk])
    stmt = module.insert(table).on_conflict_do_nothing().returning(*columns)
    out: dict[Any, Any] = {}
    for row in session.execute(stmt, rows).all():
        head = tuple(row[:len(key)])
        out[head] = tuple(row[len(key):]) if returning else row[len(key)]
    return out
