"""server-side log-in sessions (log-out ends them) and the payee details a payout was made with

- login_sessions: one row per signed-in browser session of the portal or admin
- payouts.payee_details: the partner's billing details when the payout was created; open payouts
  get the details they have now

Revision ID: h16b_sessions_payees
Revises: 0003
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "h16b_sessions_payees"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("area", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_login_sessions_subject", "login_sessions", ["subject"])
    op.add_column("payouts", sa.Column("payee_details", sa.Text(), nullable=True))
    op.execute("""UPDATE payouts SET payee_details = (
                      SELECT billing_details FROM partners WHERE partners.id = payouts.partner_id)
                  WHERE status IN ('requested', 'approved')""")


def downgrade() -> None:
    with op.batch_alter_table("payouts") as batch:
        batch.drop_column("payee_details")
    op.drop_index("ix_login_sessions_subject", table_name="login_sessions")
    op.drop_table("login_sessions")
