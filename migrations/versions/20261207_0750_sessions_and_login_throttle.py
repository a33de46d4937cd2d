"""sessions and login throttle (owner: accounts (sessions, login throttling))

- user_sessions: browser sessions held on the server (the cookie carries a random id whose
  SHA-256 is stored), so that logout, "log out everywhere", the idle timeout and the absolute
  lifetime are enforced by the server rather than by the cookie.
- login_throttles: failed logins per account fingerprint with an exponential backoff, shared
  by the login form, the token endpoint and every app server.

Revision ID: c7a0d1e20750
Revises: c7a0d1e20740
"""

import sqlalchemy as sa
from alembic import op

import market.db

revision = "c7a0d1e20750"
down_revision = "c7a0d1e20740"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "user_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("sid_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", market.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", market.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", market.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=20), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_sessions_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_sessions")),
        sa.UniqueConstraint("sid_hash", name=op.f("uq_user_sessions_sid_hash")),
    )
    with op.batch_alter_table("user_sessions") as batch:
        batch.create_index(batch.f("ix_user_sessions_user_id"), ["user_id"], unique=False)
    op.create_table(
        "login_throttles",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", market.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("blocked_until", market.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_throttles")),
    )


def downgrade():
    op.drop_table("login_throttles")
    with op.batch_alter_table("user_sessions") as batch:
        batch.drop_index(batch.f("ix_user_sessions_user_id"))
    op.drop_table("user_sessions")
