"""Several independent statements in one round trip: psycopg's pipeline mode on PostgreSQL.

A group commit reads its batch's payments, subscription states, statuses and waiting refunds,
then writes rows of which some need others' ids; one after the other, each statement was a
round trip the committer sat out while holding its transaction open. In pipeline mode the
statements that do not need each other's answers go out together and their answers come back
together. The rows are plain named tuples (columns by name, as SQLAlchemy's rows give them),
with each column's result type applied (UTC datetimes); SQLite runs the same statements one by
one.
"""

from __future__ import annotations

import contextlib
import functools
from collections import namedtuple
from collections.abc import Callable, Sequence
from typing import Any

from psycopg.pq import TransactionStatus
from sqlalchemy import Executable
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session


def run_together(session: Session, reads: Sequence[tuple[Executable, dict[str, Any]]]
                 ) -> list[list[Any]]:
    """The rows of each (statement, parameters) in `reads` (a SELECT, or a single-statement
    write with or without RETURNING; none for one without), in the caller's transaction."""
    dialect = session.get_bind().dialect
    if dialect.name != "postgresql":
        return [_rows(session.execute(stmt, params)) for stmt, params in reads]
    session.flush()  # what the session holds unwritten must be visible, as autoflush makes it
    plans = [_plan(stmt, dialect) for stmt, _ in reads]
    raw = session.connection().connection.driver_connection
    assert raw is not None
    cursors = []
    # One statement alone skips the pipeline, not the driver: SQLAlchemy's own execution (its
    # ORM context, compiled cache look-up and result wrapping) cost more CPU than the statement.
    # Unless it opens the transaction: in a pipeline the driver's BEGIN travels with it instead
    # of costing a round trip of its own.
    starts = raw.info.transaction_status == TransactionStatus.IDLE
    try:
        with raw.pipeline() if len(reads) > 1 or starts else contextlib.nullcontext():
            for (compiled, _, _), (_, params) in zip(plans, reads, strict=True):
                cursor = raw.cursor()
                cursor.execute(compiled.string, _bound(compiled, params))
                cursors.append(cursor)
    except dialect.loaded_dbapi.Error as exc:
        raise _as_sqlalchemy(session, exc, plans[len(cursors) - 1 if cursors else 0][0]) from exc
    out = []
    for (_, make, convert), cursor in zip(plans, cursors, strict=True):
        rows = cursor.fetchall() if cursor.description is not None else []
        cursor.close()
        out.append([make(*convert(row)) for row in rows])
    return out


def _as_sqlalchemy(session: Session, exc: Any, compiled: Any) -> Exception:
    """The driver's error as SQLAlchemy would have raised it (an IntegrityError for a unique
    violation, an OperationalError for a deadlock), so callers catch the same classes on either
    path; a lost connection is invalidated, as SQLAlchemy does, rather than pooled again."""
    bind = session.get_bind()
    connection = session.connection()
    dead = bind.dialect.is_disconnect(exc, connection.connection.dbapi_connection, None)
    if dead:
        connection.invalidate(exc)
    return DBAPIError.instance(compiled.string, None, exc, bind.dialect.loaded_dbapi.Error,
                               hide_parameters=True, connection_invalidated=dead,
                               dialect=bind.dialect)


def _rows(result: Any) -> list[Any]:
    return list(result) if getattr(result, "returns_rows", True) else []


def _bound(compiled: Any, params: dict[str, Any]) -> dict[str, Any]:
    """The driver's parameters: the caller's and those the statement carries (an upsert's
    literals), through their types' bind processing, as SQLAlchemy would pass them."""
    processors = compiled._bind_processors
    return {name: processors[name](value) if name in processors else value
            for name, value in compiled.construct_params(params).items()}


@functools.lru_cache(maxsize=64)
def _plan(stmt: Any, dialect: Dialect) -> tuple[Any, Any, Callable[[Any], Any]]:
    """The compiled statement, its row type and the conversion of a row's values (built once
    per statement: they are cached, module-level or per shape)."""
    compiled = stmt.compile(dialect=dialect)
    columns = list(getattr(stmt, "exported_columns", ()))
    # rename: a join's columns may share a name (each table's `id`); they are read by position
    row_type = namedtuple("Row", [c.key for c in columns], rename=True)  # type: ignore[misc]
    processors = [c.type._cached_result_processor(dialect, None) for c in columns]
    if not any(processors):
        return compiled, row_type, lambda row: row
    pairs = list(enumerate(processors))

    def convert(row: Any) -> list[Any]:
        return [p(row[i]) if p is not None else row[i] for i, p in pairs]

    return compiled, row_type, convert


def run_one(session: Session, stmt: Executable, params: dict[str, Any]) -> list[Any]:
    """`run_together` for one statement: its rows."""
    return run_together(session, [(stmt, params)])[0]
