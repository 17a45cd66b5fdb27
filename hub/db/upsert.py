"""`INSERT ... ON CONFLICT DO NOTHING` for both dialects: the primitive behind idempotency.

Two processes racing to insert the same unique key both succeed as statements; exactly one row
exists afterwards and exactly one of them learns it inserted it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, make_transient_to_detached

from hub.db.pipelined import run_one


def insert_ignore(session: Session, model: type[Any], values: dict[str, Any]) -> Any:
    """Insert one row unless a unique key already holds it. Returns the new row's primary key
    when this call inserted it (truthy), else None: callers need no second query for the id."""
    # RETURNING, not rowcount: drivers report -1 for INSERT .. ON CONFLICT on some paths.
    stmt = _ignore_statement(session.get_bind().dialect.name, model.__table__)
    row = session.execute(stmt, values).first()
    return None if row is None else row[0]


@functools.cache
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


@functools.cache
def _row_statement(dialect: str, table: Any) -> Any:
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing().returning(*table.c)


def insert_ignore_many(session: Session, model: type[Any], rows: list[dict[str, Any]],
                       key: tuple[str, ...], returning: tuple[str, ...] = ()) -> dict[Any, Any]:
    """`insert_ignore` for many rows in one statement: {key values: primary key} of the rows this
    call inserted (with `returning`: {key values: (those columns)}). Rows whose key is held
    already are left out, as are repeats of a key within `rows` after its first. All rows must
    name the same columns."""
    if not rows:
        return {}
    stmt, params = ignore_many(session, model, rows, key, returning)
    return ignored_many(run_one(session, stmt, params), key, returning)


def ignore_many(session: Session, model: type[Any], rows: list[dict[str, Any]],
                key: tuple[str, ...], returning: tuple[str, ...] = ()) -> tuple[Any, Any]:
    """`insert_ignore_many`'s statement and parameters, for a caller that runs it together with
    others (`hub.db.pipelined.run_together`); `ignored_many` reads its rows. `rows` not empty."""
    dialect = session.get_bind().dialect.name
    return (_ignore_many_statement(dialect, model.__table__, tuple(rows[0]), key, returning),
            _many_params(dialect, rows))


def ignored_many(result_rows: Any, key: tuple[str, ...], returning: tuple[str, ...] = ()
                 ) -> dict[Any, Any]:
    """What `insert_ignore_many` returns, from the rows its statement returned."""
    out: dict[Any, Any] = {}
    for row in result_rows:
        head = tuple(row[:len(key)])
        out[head] = tuple(row[len(key):]) if returning else row[len(key)]
    return out


def many_rows(session: Session, table: Any, rows: list[dict[str, Any]],
              finish: Callable[[Any], Any] = lambda ins: ins) -> tuple[Any, Any]:
    """An INSERT of `rows` (all naming the same columns) as one statement and its parameters;
    `finish` adds an ON CONFLICT clause.

    On PostgreSQL the rows travel as one JSON document (INSERT .. SELECT .. FROM
    json_populate_recordset): the statement's text is the same for any number of rows, so
    neither the driver nor the server parses it again (a VALUES list of n rows is new text for
    every n, and converting its placeholders cost more than the insert), and the document is
    written by the C JSON encoder (one array per column instead was escaped element by element
    by the driver: ten times the CPU for event payloads). SQLite takes a multi-row VALUES.
    """
    dialect = session.get_bind().dialect.name
    return _many_statement(dialect, table, tuple(rows[0]), finish), _many_params(dialect, rows)


def _many_params(dialect: str, rows: list[dict[str, Any]]) -> Any:
    if dialect != "postgresql":
        return rows
    # The rows as they are (all name the same columns): the C encoder asks `_json_value` only
    # about what JSON has no type for, instead of a Python call per value.
    return {"rows": json.dumps(rows, separators=(",", ":"), default=_json_value)}


def _do_nothing(ins: Any) -> Any:
    return ins.on_conflict_do_nothing()


@functools.lru_cache(maxsize=256)
def _ignore_many_statement(dialect: str, table: Any, names: tuple[str, ...], key: tuple[str, ...],
                           returning: tuple[str, ...]) -> Any:
    """Built once per shape: building it (and its cache key) cost about as much CPU per group
    commit as the rules of sixteen events."""
    pk = list(table.primary_key.columns)[0]
    columns = [table.c[k] for k in key] + ([table.c[c] for c in returning] or [pk])
    return _many_statement(dialect, table, names, _do_nothing).returning(*columns)


def _json_value(value: Any) -> Any:
    """A column value JSON has no type for, as json_populate_recordset reads it back into the
    column's type."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware UTC time")
        return value.isoformat()
    raise TypeError(f"a {type(value).__name__} is not stored as a column value")


@functools.lru_cache(maxsize=256)
def _many_statement(dialect: str, table: Any, names: tuple[str, ...],
                    finish: Callable[[Any], Any]) -> Any:
    if dialect != "postgresql":
        return finish(sqlite.insert(table))
    from sqlalchemy import Text, bindparam, cast, func, literal_column, select

    records = func.json_populate_recordset(
        literal_column(f"NULL::{table.name}"),
        cast(bindparam("rows", type_=Text), postgresql.JSON)).table_valued(*names)
    return finish(postgresql.insert(table).from_select(
        list(names), select(*[records.c[n] for n in names])))
