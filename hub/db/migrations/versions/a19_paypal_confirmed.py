"""partners.paypal_confirmed_at: no payout goes to a PayPal address nobody confirmed

Addresses already stored count as confirmed (they were set by the operator, or paid before), so
a running install keeps paying them; new ones set in the portal wait for the mailed link.

Revision ID: a19_paypal_confirmed
Revises: c19_subscription_ends
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "a19_paypal_confirmed"
down_revision = "c19_subscription_ends"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.add_column(sa.Column("paypal_confirmed_at", sa.DateTime(timezone=True),
                                      nullable=True))
    op.execute("UPDATE partners SET paypal_confirmed_at = created_at "
               "WHERE paypal_email IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.drop_column("paypal_confirmed_at")
