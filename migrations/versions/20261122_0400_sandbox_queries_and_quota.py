"""Sandbox query log and privacy budget (owner: sandbox)

- sandbox_queries: one row per query a buyer ran on its license, accepted or refused (SQL
  text, hashes, decision, rule, counts, time, quota and epsilon used; never result rows).
  ``(license_id, canonical_hash)`` finds an earlier run of the same question (a DP repeat is
  answered again without spending budget); ``(license_id, created_at)`` serves the history.
  Quota and privacy budget themselves stay on ``licenses`` (decremented atomically).

Revision ID: b4d4a0c2e304
Revises: b3d4a0c2e303
"""

import sqlalchemy as sa
from alembic import op

import market.db

revision = "b4d4a0c2e304"
down_revision = "b3d4a0c2e303"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "sandbox_queries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("license_id", sa.Integer(), nullable=False),
        sa.Column("buyer_org_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("sql_text", sa.Text(), nullable=False),
        sa.Column("sql_hash", sa.String(length=64), nullable=False),
        sa.Column("canonical_hash", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rule", sa.String(length=40), nullable=True),
        sa.Column("rows_returned", sa.Integer(), nullable=True),
        sa.Column("suppressed_groups", sa.Integer(), nullable=True),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.Column("elapsed_ms", sa.Integer(), nullable=True),
        sa.Column("quota_charged", sa.Boolean(), nullable=False),
        sa.Column("epsilon_spent", sa.Numeric(precision=10, scale=4), nullable=False),
        sa.Column("created_at", market.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('ok','refused','error','timeout')", name=op.f("ck_sandbox_queries_status")
        ),
        sa.CheckConstraint(
            "epsilon_spent >= 0", name=op.f("ck_sandbox_queries_epsilon_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["license_id"], ["licenses.id"], name=op.f("fk_sandbox_queries_license_id_licenses")
        ),
        sa.ForeignKeyConstraint(
            ["buyer_org_id"],
            ["organizations.id"],
            name=op.f("fk_sandbox_queries_buyer_org_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_sandbox_queries_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sandbox_queries")),
    )
    with op.batch_alter_table("sandbox_queries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sandbox_queries_buyer_org_id"), ["buyer_org_id"], unique=False
        )
        batch_op.create_index(
            "ix_sandbox_queries_license_canonical", ["license_id", "canonical_hash"], unique=False
        )
        batch_op.create_index(
            "ix_sandbox_queries_license_created", ["license_id", "created_at"], unique=False
        )


def downgrade():
    with op.batch_alter_table("sandbox_queries", schema=None) as batch_op:
        batch_op.drop_index("ix_sandbox_queries_license_created")
        batch_op.drop_index("ix_sandbox_queries_license_canonical")
        batch_op.drop_index(batch_op.f("ix_sandbox_queries_buyer_org_id"))
    op.drop_table("sandbox_queries")
