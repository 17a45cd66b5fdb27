"""check eight references per statement instead of per row: the causing event of payments,
subscription states, commissions and ledger legs, a commission's payment and reversed line, a
leg's line and commission (see REFERENCES in hub/db/models.py)

Their foreign keys checked each inserted row apart (on PostgreSQL a trigger per row running
SELECT ... FOR KEY SHARE), the largest share of a payment's database time. The guarantee stays:
- PostgreSQL: AFTER ... FOR EACH STATEMENT triggers look up all the values a statement wrote in
  one query a reference over its transition table (`hub_check_<table>_references`) and raise
  foreign_key_violation (23503) naming the first value with no row;
- SQLite: a BEFORE INSERT (and UPDATE OF the column) trigger per reference;
- nothing deletes a referred row (events, payments, commission lines) or changes its id: a row
  trigger refuses both, so no check needs to lock the rows it found. TRUNCATE fires no row
  triggers (the tests' clean slate); it is an operator's tool, not the hub's.

SQLite's batch mode rebuilds a table without its triggers, and its rename refuses a trigger that
names a missing table: a later batch migration of any table here must drop these triggers first
and create them again after (with ledger_entries' append-only ones, 0002).

Revision ID: s17_reference_checks
Revises: a19_paypal_confirmed
"""
from __future__ import annotations

from alembic import op

revision = "s17_reference_checks"
down_revision = "a19_paypal_confirmed"
branch_labels = None
depends_on = None

# (table, column, referred table); PostgreSQL named the foreign keys <table>_<column>_fkey.
CHECKED = (("payments", "event_id", "provider_events"),
           ("subscription_states", "event_id", "provider_events"),
           ("commissions", "event_id", "provider_events"),
           ("commissions", "payment_id", "payments"),
           ("commissions", "reverses_id", "commissions"),
           ("ledger_entries", "event_id", "provider_events"),
           ("ledger_entries", "line_id", "commissions"),
           ("ledger_entries", "commission_id", "commissions"))
REFERRED = ("provider_events", "payments", "commissions")
# ledger_entries refuses every UPDATE already (0002): only the others need an update check.
APPEND_ONLY = ("ledger_entries",)
# SQLite's constraints have no names: batch mode names them by this convention to find them.
NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}

# One query per reference over the statement's rows (the transition table `new_rows`). Each
# table has its own function of static queries, which PL/pgSQL plans once per connection: one
# generic function building them from TG_ARGV with EXECUTE format(...) planned each query again
# on every statement, about 50 us a reference, many times a foreign key's cost on the one-row
# statements of the per-event path. Planned once, a plan must stay right as the tables grow: a
# hash anti-join planned while a referred table was small went on reading all of it for every
# statement (a group commit of 16 events took 12 ms longer). So each value is looked up by the
# primary key, as a foreign key does: a correlated subquery (OFFSET 0 keeps the planner from
# turning it into a join) with sequential scans off for the function.
CHECK = """
    SELECT n.{column}::text INTO missing FROM new_rows n
    WHERE n.{column} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {schema}.{referred} r
                                                 WHERE r.id = n.{column} OFFSET 0)
    LIMIT 1;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation',
            MESSAGE = format('{table}.{column} = %s names no row of {referred}', missing);
    END IF;"""

GUARD_FUNCTION = """
CREATE OR REPLACE FUNCTION hub_referred_rows_stay() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'restrict_violation',
        MESSAGE = format('%s rows are referred to by id: never deleted, id never changed',
                         TG_TABLE_NAME);
END
$$ LANGUAGE plpgsql"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, column, _ in CHECKED:
            op.drop_constraint(f"{table}_{column}_fkey", table, type_="foreignkey")
        _postgres_triggers()
        return
    for table in _tables():
        with op.batch_alter_table(table, naming_convention=NAMING) as batch:
            for t, column, referred in CHECKED:
                if t == table:
                    batch.drop_constraint(f"fk_{table}_{column}_{referred}", type_="foreignkey")
    _sqlite_ledger_triggers()
    _sqlite_triggers()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in _tables():
            for verb in ("insert", "update"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_references_{verb} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS hub_check_{table}_references()")
        for table in REFERRED:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_referred_rows_stay ON {table}")
        op.execute("DROP FUNCTION IF EXISTS hub_referred_rows_stay()")
        for table, column, referred in CHECKED:
            op.create_foreign_key(f"{table}_{column}_fkey", table, referred, [column], ["id"])
        return
    for name in _sqlite_trigger_names():  # before the rebuilds: they name the rebuilt tables
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    for table in _tables():
        with op.batch_alter_table(table) as batch:
            for t, column, referred in CHECKED:
                if t == table:
                    batch.create_foreign_key(f"fk_{table}_{column}_{referred}", referred,
                                             [column], ["id"])
    _sqlite_ledger_triggers()


def _tables() -> list[str]:
    return list(dict.fromkeys(table for table, _, _ in CHECKED))


def _postgres_triggers() -> None:
    # Named with their schema, as a foreign key is bound to its table, whatever the search_path.
    schema = op.get_bind().exec_driver_sql("SELECT quote_ident(current_schema())").scalar()
    op.execute(GUARD_FUNCTION)
    for table in _tables():
        checks = "".join(CHECK.format(table=table, column=column, referred=referred,
                                      schema=schema)
                         for t, column, referred in CHECKED if t == table)
        op.execute(f"""CREATE OR REPLACE FUNCTION hub_check_{table}_references() RETURNS trigger
                       AS $$ DECLARE missing text; BEGIN {checks}
                       RETURN NULL; END $$ LANGUAGE plpgsql SET enable_seqscan = off""")
        # A trigger with a transition table has one event: UPDATE needs a second trigger.
        verbs = ("insert",) if table in APPEND_ONLY else ("insert", "update")
        for verb in verbs:
            op.execute(f"""CREATE TRIGGER {table}_references_{verb} AFTER {verb.upper()} ON {table}
                           REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
                           EXECUTE FUNCTION hub_check_{table}_references()""")
    for table in REFERRED:
        op.execute(f"""CREATE TRIGGER {table}_referred_rows_stay
                       BEFORE DELETE OR UPDATE OF id ON {table}
                       FOR EACH ROW EXECUTE FUNCTION hub_referred_rows_stay()""")


def _sqlite_triggers() -> None:
    for table, column, referred in CHECKED:
        verbs = ("INSERT",) if table in APPEND_ONLY else ("INSERT", f"UPDATE OF {column}")
        for verb in verbs:
            op.execute(f"""
                CREATE TRIGGER {table}_{column}_{verb.split()[0].lower()}_check
                BEFORE {verb} ON {table} BEGIN
                    SELECT RAISE(ABORT, '{table}.{column} names no row of {referred}')
                    WHERE NEW.{column} IS NOT NULL
                      AND NOT EXISTS (SELECT 1 FROM {referred} WHERE id = NEW.{column});
                END""")
    for table in REFERRED:
        refused = f"{table} rows are referred to by id: never deleted, id never changed"
        for verb in ("DELETE", "UPDATE OF id"):
            op.execute(f"""
                CREATE TRIGGER {table}_{verb.split()[0].lower()}_refused BEFORE {verb} ON {table}
                BEGIN SELECT RAISE(ABORT, '{refused}'); END""")


def _sqlite_trigger_names() -> list[str]:
    checks = [f"{table}_{column}_{verb}_check" for table, column, _ in CHECKED
              for verb in ("insert", "update")]
    return checks + [f"{table}_{verb}_refused" for table in REFERRED
                     for verb in ("delete", "update")]


def _sqlite_ledger_triggers() -> None:
    """SQLite's batch mode rebuilt ledger_entries without its append-only triggers (0002)."""
    for verb in ("UPDATE", "DELETE"):
        op.execute(f"DROP TRIGGER IF EXISTS ledger_no_{verb.lower()}")
        op.execute(f"""CREATE TRIGGER ledger_no_{verb.lower()} BEFORE {verb} ON ledger_entries
                       BEGIN SELECT RAISE(ABORT, 'ledger_entries is append-only'); END""")
