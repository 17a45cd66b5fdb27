"""A list of keys as one statement parameter, so a statement is built once and its text never
depends on how many keys a batch holds.

On PostgreSQL `column = ANY(:keys)` with the list bound as one array: SQLAlchemy's expanding
`IN (…)` renders a placeholder per key on every execution (about a fifth of a group commit's CPU
went there), and each count is new text for the server to parse and prepare. SQLite, which has
no arrays, keeps the expanding IN.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY


def one_of(dialect: str, column: Any, name: str) -> Any:
    """`column` is one of the values bound to `name` (a list)."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))
