"""publication job leases (owner: datasets (crash-safe publication jobs))

``job_leases``: one row per background job that must not be left half-done (a publication
being processed), renewed by the process that runs it; the sweeper fails and cleans up the
jobs whose lease expired (``market.leases``).

Revision ID: c7a0d1e20740
Revises: c7a0d1e20730
"""

import sqlalchemy as sa
from alembic import op

from market.db import UTCDateTime

revision = "c7a0d1e20740"
down_revision = "c7a0d1e20730"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "job_leases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.String(length=160), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_leases")),
        sa.UniqueConstraint("kind", "subject_id", name="uq_job_leases_kind_subject"),
    )
    with op.batch_alter_table("job_leases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_leases_expires_at"), ["expires_at"], unique=False)


def downgrade():
    with op.batch_alter_table("job_leases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_leases_expires_at"))
    op.drop_table("job_leases")
