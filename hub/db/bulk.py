"""Many rows at once on PostgreSQL with `COPY`: the write path of a replay's batches.

A multi-row INSERT sends its rows as one JSON document (`hub.db.upsert.many_rows`): Python
encodes every value into it (escaping each event's payload a second time) and the server decodes
it again. `COPY … FROM STDIN` streams the rows in PostgreSQL's own text format, written by
psycopg's C code. A plain insert copies straight into its table (`copy_rows`); an insert that
must skip rows whose unique key is held, and return what it inserted, copies into a temporary
table of the same columns and moves the rows with one `INSERT … SELECT … ON CONFLICT DO NOTHING
RETURNING` that also empties it (`copy_ignore_many`).

Small batches (a group commit's 16 webhooks) keep the single INSERT: the COPY is a round trip
of its own.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, event, text
from sqlalchemy.orm import Session

# From this many rows on, a COPY costs less than the JSON document it replaces.
COPY_ROWS = 64
_STAGES = "hub_bulk_stages"  # the connection's temporary tables, in its `info`


def wanted(session: Session, rows: list[dict[str, Any]]) -> bool:
    return len(rows) >= COPY_ROWS and session.get_bind().dialect.name == "postgresql"


def copy_rows(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert `rows` (all naming the same columns) into `table` with one COPY."""
    names = tuple(rows[0])
    _copy(session, table.name, names, rows)


def copy_ignore_many(session: Session, table: Any, rows: list[dict[str, Any]],
                     key: tuple[str, ...], returning: tuple[str, ...]) -> list[Any]:
    """`INSERT … ON CONFLICT DO NOTHING RETURNING key + returning` of `rows` through a COPY into
    a temporary table; rows move in their order (two writers wait for each other instead of
    deadlocking, when `rows` come sorted by key), and of a key repeated within `rows` the first
    is inserted, as by the single INSERT."""
    names = tuple(rows[0])
    stage = _stage(session, table.name, names)
    _copy(session, stage, names, rows, numbered=True)
    columns = ", ".join(names)
    back = ", ".join(key + returning)
    return list(session.execute(text(
        f"WITH moved AS (DELETE FROM {stage} RETURNING {columns}, hub_n) "
        f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM moved ORDER BY hub_n "
        f"ON CONFLICT DO NOTHING RETURNING {back}")).all())


def _stage(session: Session, table: str, names: tuple[str, ...]) -> str:
    """A temporary table with `names` of `table`'s columns, made once per connection (it lives
    as long as the connection; the statement that reads its rows deletes them)."""
    connection = session.connection()
    engine = connection.engine
    if not event.contains(engine, "rollback", _forget_stages):
        event.listen(engine, "rollback", _forget_stages)
    stages: dict[tuple[str, tuple[str, ...]], str] = connection.info.setdefault(_STAGES, {})
    stage = stages.get((table, names))
    if stage is None:
        stage = f"hub_stage_{table}_{len(stages)}"
        session.execute(text(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} AS "
            f"SELECT {', '.join(names)}, 0 AS hub_n FROM {table} WITH NO DATA"))
        stages[(table, names)] = stage
    return stage


def _forget_stages(connection: Connection) -> None:
    """A rollback may have undone a stage's creation: look again (IF NOT EXISTS) next time."""
    connection.info.pop(_STAGES, None)


def _copy(session: Session, table: str, names: tuple[str, ...], rows: list[dict[str, Any]],
          numbered: bool = False) -> None:
    """COPY `rows` into `table` (with `numbered`, each row's position into its `hub_n`)."""
    driver = session.connection().connection.driver_connection
    assert driver is not None
    columns = ", ".join(names + (("hub_n",) if numbered else ()))
    with driver.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for n, row in enumerate(rows):
            values = [_value(row[name]) for name in names]
            copy.write_row(values + [n] if numbered else values)


def _value(value: Any) -> Any:
    """A JSON column's document as its text; everything else as psycopg writes it."""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return value
