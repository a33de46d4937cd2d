"""console rest: the e-mail outbox claims a row before sending it (at most once delivery).

- email_outbox.status gains ``sending`` (claimed by a ``market notify send`` run);
- email_outbox.claimed_at: when it was claimed (a row left ``sending`` is reported as stuck).

Revision ID: c7a0d1e20860
Revises: c7a0d1e20850
"""

import sqlalchemy as sa
from alembic import op

import market.db

revision = "c7a0d1e20860"
down_revision = "c7a0d1e20850"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("email_outbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("claimed_at", market.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.drop_constraint(batch_op.f("ck_email_outbox_status"), type_="check")
        batch_op.create_check_constraint("status", "status IN ('pending','sending','sent')")


def downgrade():
    # A claimed row's outcome is unknown: back to pending (the older code sends at least once).
    op.execute("UPDATE email_outbox SET status = 'pending' WHERE status = 'sending'")
    with op.batch_alter_table("email_outbox", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_email_outbox_status"), type_="check")
        batch_op.create_check_constraint("status", "status IN ('pending','sent')")
        batch_op.drop_column("claimed_at")
