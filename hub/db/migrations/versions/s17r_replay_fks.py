"""drop six foreign keys whose row the same transaction has just written: the causing event of
payments, subscription states, commissions and ledger legs, a commission's payment and a leg's
line (see NO_FK in hub/db/models.py); their per-row checks were a third of a replay's database
time

Revision ID: s17r_replay_fks
Revises: r18b_mail
"""
from __future__ import annotations

from alembic import op

revision = "s17r_replay_fks"
down_revision = "r18b_mail"
branch_labels = None
depends_on = None

# (table, column, referred table); PostgreSQL named them <table>_<column>_fkey.
DROPPED = (("payments", "event_id", "provider_events"),
           ("subscription_states", "event_id", "provider_events"),
           ("commissions", "event_id", "provider_events"),
           ("commissions", "payment_id", "payments"),
           ("ledger_entries", "event_id", "provider_events"),
           ("ledger_entries", "line_id", "commissions"))
# SQLite's constraints have no names: batch mode names them by this convention to find them.
NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, column, _ in DROPPED:
            op.drop_constraint(f"{table}_{column}_fkey", table, type_="foreignkey")
        return
    for table in _tables():
        with op.batch_alter_table(table, naming_convention=NAMING) as batch:
            for t, column, referred in DROPPED:
                if t == table:
                    batch.drop_constraint(f"fk_{table}_{column}_{referred}", type_="foreignkey")
    _sqlite_ledger_triggers()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, column, referred in DROPPED:
            op.create_foreign_key(f"{table}_{column}_fkey", table, referred, [column], ["id"])
        return
    for table in _tables():
        with op.batch_alter_table(table) as batch:
            for t, column, referred in DROPPED:
                if t == table:
                    batch.create_foreign_key(f"fk_{table}_{column}_{referred}", referred,
                                             [column], ["id"])
    _sqlite_ledger_triggers()


def _tables() -> list[str]:
    return list(dict.fromkeys(table for table, _, _ in DROPPED))


def _sqlite_ledger_triggers() -> None:
    """SQLite's batch mode rebuilt ledger_entries without its append-only triggers (0002)."""
    for verb in ("UPDATE", "DELETE"):
        op.execute(f"DROP TRIGGER IF EXISTS ledger_no_{verb.lower()}")
        op.execute(f"""CREATE TRIGGER ledger_no_{verb.lower()} BEFORE {verb} ON ledger_entries
                       BEGIN SELECT RAISE(ABORT, 'ledger_entries is append-only'); END""")
