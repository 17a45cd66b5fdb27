"""drop three indexes no query needs: every insert of a commission, ledger leg and subscription
state paid for them (a replay or busy ingest writes each of those once per payment)

- ix_commissions_partner_id: ix_commissions_partner_earned and _created start with partner_id
- ix_subscription_states_customer_id: ix_subscription_states_customer_time starts with it
- ix_ledger_entries_transfer_id: no query selects by transfer

Revision ID: 0003
Revises: 0002
"""
from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

DROPPED = (("commissions", "ix_commissions_partner_id", "partner_id"),
           ("subscription_states", "ix_subscription_states_customer_id", "customer_id"),
           ("ledger_entries", "ix_ledger_entries_transfer_id", "transfer_id"))


def upgrade() -> None:
    for table, index, _ in DROPPED:
        op.drop_index(index, table_name=table)


def downgrade() -> None:
    for table, index, column in DROPPED:
        op.create_index(index, table, [column])
