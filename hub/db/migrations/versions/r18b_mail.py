"""e-mail: the `mails` outbox, the partner's switch for commission mails, the e-mail
verification time, and the purpose of a one-time token (reset or verify)

Revision ID: r18b_mail
Revises: 0003
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r18b_mail"
down_revision = "h16b_sessions_payees"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mails",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("template", sa.String(length=64), nullable=False),
        sa.Column("to_addr", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=True),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    with op.batch_alter_table("mails", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mails_status"), ["status"], unique=False)
    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mail_commissions", sa.Boolean(), nullable=False,
                                      server_default=sa.text("true")))
        batch_op.add_column(sa.Column("email_verified_at", sa.DateTime(timezone=True),
                                      nullable=True))
    with op.batch_alter_table("password_reset_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("purpose", sa.String(length=16), nullable=False,
                                      server_default=sa.text("'reset'")))


def downgrade() -> None:
    with op.batch_alter_table("password_reset_tokens", schema=None) as batch_op:
        batch_op.drop_column("purpose")
    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.drop_column("email_verified_at")
        batch_op.drop_column("mail_commissions")
    with op.batch_alter_table("mails", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mails_status"))
    op.drop_table("mails")
