"""subscription states: when the current trial or paid period ends (the clients list's
"Expires"), from the provider's subscription object

Revision ID: c19_subscription_ends
Revises: b19_agreement_version
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c19_subscription_ends"
down_revision = "b19_agreement_version"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscription_states", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscription_states", schema=None) as batch_op:
        batch_op.drop_column("ends_at")
