"""Several independent reads in one round trip: psycopg's pipeline mode on PostgreSQL.

A group commit reads its batch's payments, subscription states, statuses and waiting refunds;
one after the other, each was a round trip the committer sat out while holding its transaction
open. In pipeline mode the four queries go out together and their answers come back together.
The rows are plain named tuples (columns by name, as SQLAlchemy's rows give them), with each
column's result type applied (UTC datetimes); SQLite runs the same reads one by one.
"""

from __future__ import annotations

import functools
from collections import namedtuple
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session


def read_together(session: Session, reads: Sequence[tuple[Select[Any], dict[str, Any]]]
                  ) -> list[list[Any]]:
    """The rows of each (statement, parameters) in `reads`, in the caller's transaction."""
    dialect = session.get_bind().dialect
    if dialect.name != "postgresql" or len(reads) < 2:
        return [list(session.execute(stmt, params)) for stmt, params in reads]
    session.flush()  # what the session holds unwritten must be visible, as autoflush makes it
    plans = [_plan(stmt, dialect) for stmt, _ in reads]
    raw = session.connection().connection.driver_connection
    assert raw is not None
    cursors = []
    with raw.pipeline():
        for (sql, _, _), (_, params) in zip(plans, reads, strict=True):
            cursor = raw.cursor()
            cursor.execute(sql, params)
            cursors.append(cursor)
    out = []
    for (_, make, convert), cursor in zip(plans, cursors, strict=True):
        rows = cursor.fetchall()
        cursor.close()
        out.append([make(*convert(row)) for row in rows])
    return out


@functools.lru_cache(maxsize=64)
def _plan(stmt: Select[Any], dialect: Dialect) -> tuple[str, Any, Callable[[Any], Any]]:
    """The statement's SQL for the driver, its row type and the conversion of a row's values
    (built once: the statements are module-level constants)."""
    compiled = stmt.compile(dialect=dialect)
    columns = list(stmt.selected_columns)
    row_type = namedtuple("Row", [c.key for c in columns])  # type: ignore[misc]
    processors = [c.type._cached_result_processor(dialect, None) for c in columns]
    if not any(processors):
        return str(compiled), row_type, lambda row: row
    pairs = list(enumerate(processors))

    def convert(row: Any) -> list[Any]:
        return [p(row[i]) if p is not None else row[i] for i, p in pairs]

    return str(compiled), row_type, convert
