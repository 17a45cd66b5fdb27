"""Storage guarantees: the ledger is append-only in the database itself; migrations match models."""

from __future__ import annotations

from datetime import UTC

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import DatabaseError, IntegrityError

from connectors import stripe_trigger as st
from connectors.stripe import process
from hub.attribution.partners import create_partner


def test_ledger_refuses_update_and_delete(hub):
    _paid(hub)
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


@pytest.mark.postgres
def test_postgres_plans_every_execution_with_its_values(make_hub):
    """A generic plan costed on stale statistics turned a replay batch's stored-id check from
    0.3 ms into 580 ms; every pooled connection plans each execution with its values."""
    hub = make_hub("postgres")
    with hub.engine.connect() as first, hub.engine.connect() as second:
        for conn in (first, second):
            assert conn.exec_driver_sql("SHOW plan_cache_mode").scalar() == "force_custom_plan"


@pytest.mark.parametrize("refs, found", [
    ([], set()),
    (["cus_a"], {"cus_a"}),
    (["cus_a", "cus_c", "cus_missing"], {"cus_a", "cus_c"}),
    (["cus_a", "cus_a"], {"cus_a"}),
])
def test_one_of_binds_a_key_list_as_one_parameter(hub, refs, found):
    from datetime import datetime

    from sqlalchemy import select

    from hub.db.keys import one_of
    from hub.db.models import Customer

    with hub.transaction() as s:
        for ref in ("cus_a", "cus_b", "cus_c"):
            s.add(Customer(provider="stripe", ref=ref, first_seen_at=datetime.now(UTC)))
    stmt = select(Customer.ref).where(one_of(hub.engine.dialect.name, Customer.ref, "refs"))
    with hub.transaction() as s:
        assert set(s.scalars(stmt, {"refs": refs})) == found
        # The same statement object serves any number of keys (built once, cached).
        assert set(s.scalars(stmt, {"refs": ["cus_b"]})) == {"cus_b"}


# References checked by triggers instead of foreign keys (migration s17_reference_checks): a
# reference to a missing row is refused as a foreign key would refuse it, and referred rows stay.
MISSING = [("payments", "event_id", "999999"),
           ("subscription_states", "event_id", "999999"),
           ("commissions", "event_id", "999999"),
           ("commissions", "payment_id", "999999"),
           ("commissions", "reverses_id", "'com_missing'"),
           ("ledger_entries", "event_id", "999999"),
           ("ledger_entries", "line_id", "'com_missing'"),
           ("ledger_entries", "commission_id", "'com_missing'")]
# What a copy of a row must change to pass the table's unique constraints (`n`: which copy).
UNIQUE = {"provider_events": {"event_id": "event_id || '_' || n"},
          "payments": {"ref": "ref || '_' || n"},
          "subscription_states": {"subscription_ref": "subscription_ref || '_' || n"},
          "commissions": {"id": "id || '_' || n", "key": "key || '_' || n"},
          "ledger_entries": {}}


def _paid(hub):
    """One paid invoice: an event, a payment, a subscription state, a commission, a ledger leg."""
    with hub.transaction() as s:
        partner = create_partner(hub, s, program="crazycall", email="p@x.test")
    process(hub, st.event("invoice.paid", st.invoice("in_1", customer_id="c", amount=100,
                                                     partner_code=partner.code,
                                                     subscription_id="s")))


def _copies(conn, table, rows=1, **changes):
    """Insert `rows` copies of the table's first row in one statement, with `changes` (SQL)."""
    from sqlalchemy import inspect

    columns = [c["name"] for c in inspect(conn).get_columns(table)
               if c["name"] != "id" or table == "commissions"]
    values = {c: c for c in columns} | UNIQUE[table] | changes
    copies = " UNION ALL ".join(f"SELECT {n} AS n" for n in range(1, rows + 1))
    conn.execute(text(
        f"INSERT INTO {table} ({', '.join(columns)}) "
        f"SELECT {', '.join(values[c] for c in columns)} FROM {table} CROSS JOIN ({copies}) copies "
        f"WHERE {table}.id = (SELECT min(id) FROM {table}) ORDER BY n"))


def _count(hub, table):
    with hub.engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()


@pytest.mark.parametrize("table, column, value", MISSING)
def test_a_reference_to_a_missing_row_is_refused(hub, table, column, value):
    _paid(hub)
    with pytest.raises(IntegrityError, match=f"{table}.{column}"):
        with hub.engine.begin() as conn:
            _copies(conn, table, **{column: value})
    assert _count(hub, table) == 1


@pytest.mark.parametrize("table, column, value", MISSING[:5])
def test_an_update_to_a_missing_row_is_refused(hub, table, column, value):
    _paid(hub)
    with pytest.raises(IntegrityError, match=f"{table}.{column}"):
        with hub.engine.begin() as conn:
            conn.execute(text(f"UPDATE {table} SET {column} = {value}"))
    with hub.engine.begin() as conn:  # other columns change freely
        conn.execute(text(f"UPDATE {table} SET {column} = {column}, created_at = created_at"
                          if table == "commissions" else
                          f"UPDATE {table} SET {column} = {column}, plan = 'pro'"))


@pytest.mark.parametrize("table, column, value", [MISSING[3], MISSING[6]])
def test_a_statement_with_one_bad_row_is_refused_whole(hub, table, column, value):
    _paid(hub)
    with pytest.raises(IntegrityError, match=f"{table}.{column}"):
        with hub.engine.begin() as conn:
            _copies(conn, table, rows=3, **{column: f"CASE WHEN n = 2 THEN {value} "
                                                    f"ELSE {column} END"})
    assert _count(hub, table) == 1


@pytest.mark.parametrize("sql", [
    "DELETE FROM provider_events", "DELETE FROM payments", "DELETE FROM commissions",
    "UPDATE provider_events SET id = id + 100", "UPDATE payments SET id = id + 100",
    "UPDATE commissions SET id = id || 'x'"])
def test_referred_rows_are_never_deleted_nor_renumbered(hub, sql):
    _paid(hub)
    with pytest.raises(IntegrityError, match="referred to"):
        with hub.engine.begin() as conn:
            conn.execute(text(sql))


def test_rows_referring_to_rows_of_the_same_transaction_pass(hub):
    """The shape of a payment's writes: its event, then the rows naming it, several per
    statement, a reversal naming a line of its own statement."""
    _paid(hub)
    event = "(SELECT max(id) FROM provider_events)"
    with hub.engine.begin() as conn:
        (line,) = conn.execute(text("SELECT id FROM commissions")).one()
        _copies(conn, "provider_events")
        _copies(conn, "payments", rows=2, event_id=event)
        _copies(conn, "subscription_states", rows=2, event_id=event)
        _copies(conn, "commissions", rows=2, event_id=event,
                payment_id="(SELECT max(id) FROM payments)",
                reverses_id=f"CASE WHEN n = 2 THEN '{line}_1' END")
        _copies(conn, "ledger_entries", rows=2, event_id=event, commission_id=f"'{line}_1'",
                line_id=f"'{line}_' || n")
    assert [_count(hub, t) for t in UNIQUE] == [2, 3, 3, 3, 3]


def test_the_reference_checks_migrate_down_and_up(tmp_path):
    """Down: the foreign keys are back and the checks gone (the ledger stays append-only); up
    again: the checks are back."""
    from alembic import command
    from sqlalchemy import create_engine, inspect

    from hub.db.session import alembic_config

    engine = create_engine(f"sqlite:///{tmp_path / 'round.db'}")
    cfg = alembic_config(engine)

    def state():
        with engine.connect() as conn:
            triggers = {r[0] for r in conn.execute(text(
                "SELECT name FROM sqlite_master WHERE type = 'trigger'"))}
        fks = {(t, fk["constrained_columns"][0]) for t in UNIQUE
               for fk in inspect(engine).get_foreign_keys(t)}
        return triggers, fks

    command.upgrade(cfg, "head")
    checked, _ = state()
    command.downgrade(cfg, "a19_paypal_confirmed")
    triggers, fks = state()
    assert triggers == {"ledger_no_update", "ledger_no_delete"}
    assert {(t, c) for t, c, _ in MISSING} <= fks
    command.upgrade(cfg, "head")
    assert state()[0] == checked > triggers
    engine.dispose()


def test_a_statement_sent_through_the_driver_fails_as_sqlalchemy_would(hub):
    """`run_one` and `run_together` skip SQLAlchemy's execution on PostgreSQL, not its errors:
    a unique violation is an IntegrityError, which `release_due` catches when a racing tick
    released the commission first."""
    from hub.db.models import ProviderEvent
    from hub.db.pipelined import run_one, run_together

    _paid(hub)
    events = ProviderEvent.__table__
    with hub.transaction() as s:
        row = s.execute(select(events)).mappings().first()
    again = insert(events).values(**{k: v for k, v in row.items() if k != "id"})
    for run in (lambda s: run_one(s, again, {}),
                lambda s: run_together(s, [(select(events.c.id), {}), (again, {})])):
        with pytest.raises(IntegrityError):
            with hub.transaction() as s:
                run(s)
    with hub.transaction() as s:  # the connection went back to the pool usable
        assert len(run_one(s, select(events.c.id), {})) == 1
