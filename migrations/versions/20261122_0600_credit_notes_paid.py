"""Credit notes paid back (owner: licenses)

- refunds: ``paid_at``, ``paid_by_id`` and ``paid_reference`` record when the operator paid
  an invoice refund's credit note back to the buyer by bank transfer (its ``status`` turns
  from ``pending`` to ``paid``; the ledger gets a ``credit_note_paid`` journal).

Revision ID: b6d4a0c2e306
Revises: b5d4a0c2e305
"""

import sqlalchemy as sa
from alembic import op

import market.db

revision = "b6d4a0c2e306"
down_revision = "b5d4a0c2e305"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("refunds") as batch:
        batch.add_column(sa.Column("paid_at", market.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("paid_by_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("paid_reference", sa.String(length=200), nullable=True))
        batch.create_foreign_key(
            batch.f("fk_refunds_paid_by_id_users"), "users", ["paid_by_id"], ["id"]
        )


def downgrade():
    with op.batch_alter_table("refunds") as batch:
        batch.drop_constraint(batch.f("fk_refunds_paid_by_id_users"), type_="foreignkey")
        batch.drop_column("paid_reference")
        batch.drop_column("paid_by_id")
        batch.drop_column("paid_at")
