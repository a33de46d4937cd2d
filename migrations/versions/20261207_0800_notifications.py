"""notifications (owner: notifications outbox (buyer-ux))

- notifications: one row per state change per user it concerns (the notification centre).
- email_outbox: e-mails to send about notifications when ``MARKET_NOTIFY_EMAIL`` is on.

Revision ID: c7a0d1e20800
Revises: c7a0d1e20790
"""

import sqlalchemy as sa
from alembic import op

import market.db

revision = "c7a0d1e20800"
down_revision = "c7a0d1e20790"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recipient_org_id", sa.Integer(), nullable=False),
        sa.Column("recipient_user_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("audit_seq", sa.BigInteger(), nullable=True),
        sa.Column("created_at", market.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("read_at", market.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["recipient_org_id"], ["organizations.id"],
            name=op.f("fk_notifications_recipient_org_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["recipient_user_id"], ["users.id"],
            name=op.f("fk_notifications_recipient_user_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    op.create_index(
        op.f("ix_notifications_recipient_org_id"), "notifications", ["recipient_org_id"]
    )
    op.create_index(
        "ix_notifications_user_unread", "notifications", ["recipient_user_id", "read_at"]
    )
    op.create_table(
        "email_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notification_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("created_at", market.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", market.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('pending','sent')", name=op.f("ck_email_outbox_status")),
        sa.ForeignKeyConstraint(
            ["notification_id"], ["notifications.id"],
            name=op.f("fk_email_outbox_notification_id_notifications"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_email_outbox_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_outbox")),
        sa.UniqueConstraint("notification_id", name=op.f("uq_email_outbox_notification_id")),
    )
    op.create_index(op.f("ix_email_outbox_user_id"), "email_outbox", ["user_id"])
    op.create_index("ix_email_outbox_status", "email_outbox", ["status", "id"])


def downgrade():
    op.drop_index("ix_email_outbox_status", table_name="email_outbox")
    op.drop_index(op.f("ix_email_outbox_user_id"), table_name="email_outbox")
    op.drop_table("email_outbox")
    op.drop_index("ix_notifications_user_unread", table_name="notifications")
    op.drop_index(op.f("ix_notifications_recipient_org_id"), table_name="notifications")
    op.drop_table("notifications")
