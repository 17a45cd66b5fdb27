"""partners: the version of the partner agreement a partner accepted

Revision ID: b19_agreement_version
Revises: r18b_mail
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "b19_agreement_version"
down_revision = "r18b_mail"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.add_column(sa.Column("agreement_version", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.drop_column("agreement_version")
