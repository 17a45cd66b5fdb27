"""`INSERT ... ON CONFLICT DO NOTHING` for both dialects: the primitive behind idempotency.

Two processes racing to insert the same unique key both succeed as statements; exactly one row
exists afterwards and exactly one of them learns it inserted it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignore(session: Session, model: type[Any], values: dict[str, Any]) -> bool:
    """Insert one row unless a unique key already holds it; True when this call inserted it."""
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    # RETURNING, not rowcount: drivers report -1 for INSERT .. ON CONFLICT on some paths.
    pk = list(model.__table__.primary_key.columns)[0]
    stmt = module.insert(model).values(**values).on_conflict_do_nothing().returning(pk)
    return session.execute(stmt).first() is not None
