"""make the ledger append-only: the database itself refuses UPDATE and DELETE

Revision ID: 0002
Revises: 0001
"""
from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE OR REPLACE FUNCTION hub_ledger_append_only() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION 'ledger_entries is append-only'; END;
            $$ LANGUAGE plpgsql""")
        op.execute("""CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON ledger_entries
                      FOR EACH ROW EXECUTE FUNCTION hub_ledger_append_only()""")
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"""CREATE TRIGGER ledger_no_{verb.lower()} BEFORE {verb} ON ledger_entries
                           BEGIN SELECT RAISE(ABORT, 'ledger_entries is append-only'); END""")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS ledger_append_only ON ledger_entries")
        op.execute("DROP FUNCTION IF EXISTS hub_ledger_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS ledger_no_update")
        op.execute("DROP TRIGGER IF EXISTS ledger_no_delete")
