"""audit head checkpoints (owner: audit (signed head, checkpoints, streamed exports))

``audit_head_observations``: the signed heads regulators have seen, so that truncating the
chain below one of them is detected. On PostgreSQL the checkpoints and the observations are
append-only like the events (an attacker would otherwise delete the checkpoints past the new
end together with the tail).

Revision ID: c7a0d1e20730
Revises: c7a0d1e20720
"""

import sqlalchemy as sa
from alembic import op

import market.db

revision = "c7a0d1e20730"
down_revision = "c7a0d1e20720"
branch_labels = None
depends_on = None

_APPEND_ONLY = ("audit_checkpoints", "audit_head_observations")


def upgrade():
    op.create_table(
        "audit_head_observations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("observer_user_id", sa.Integer(), nullable=True),
        sa.Column("observer_org_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("observed_at", market.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head_observations")),
    )
    with op.batch_alter_table("audit_head_observations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_head_observations_seq"), ["seq"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        for table in _APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_no_update_delete BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()"
            )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for table in _APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update_delete ON {table}")
    with op.batch_alter_table("audit_head_observations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_head_observations_seq"))
    op.drop_table("audit_head_observations")
