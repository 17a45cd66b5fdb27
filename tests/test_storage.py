"""Storage guarantees: the ledger is append-only in the database itself; migrations match models."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from connectors import stripe_trigger as st
from connectors.stripe import process
from hub.partners import create_partner


def test_ledger_refuses_update_and_delete(hub):
    with hub.transaction() as s:
        partner = create_partner(hub, s, program="crazycall", email="p@x.test")
    process(hub, st.event("invoice.paid", st.invoice("in_1", customer_id="c", amount=100,
                                                     partner_code=partner.code, subscription_id="s")))
    for sql in ("UPDATE ledger_entries SET amount = amount + 1", "DELETE FROM ledger_entries"):
        with pytest.raises(DatabaseError, match="append-only"):
            with hub.engine.begin() as conn:
                conn.execute(text(sql))


def test_migrations_match_the_models(hub):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from hub.db.models import Base

    with hub.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
