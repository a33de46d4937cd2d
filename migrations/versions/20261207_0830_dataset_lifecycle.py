"""dataset lifecycle (owner: dataset lifecycle (consoles))

A pre-made slot in the migration chain, so that parallel work never forks Alembic heads: its
owner writes the schema changes here; until then it changes nothing.

Revision ID: c7a0d1e20830
Revises: c7a0d1e20820
"""

import sqlalchemy as sa
from alembic import op

from market.db import UTCDateTime

revision = "c7a0d1e20830"
down_revision = "c7a0d1e20820"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("withdrawn_at", UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("withdrawal_reason", sa.Text(), nullable=True))
    op.create_table(
        "dataset_change_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("before", sa.JSON(), nullable=False),
        sa.Column("proposed_by_id", sa.Integer(), nullable=True),
        sa.Column("proposed_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("reviewed_by_id", sa.Integer(), nullable=True),
        sa.Column("reviewed_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("review_comment", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending','approved','rejected','withdrawn')",
            name=op.f("ck_dataset_change_requests_status"),
        ),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"],
                                name=op.f("fk_dataset_change_requests_dataset_id_datasets")),
        sa.ForeignKeyConstraint(["proposed_by_id"], ["users.id"],
                                name=op.f("fk_dataset_change_requests_proposed_by_id_users")),
        sa.ForeignKeyConstraint(["reviewed_by_id"], ["users.id"],
                                name=op.f("fk_dataset_change_requests_reviewed_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_change_requests")),
    )
    with op.batch_alter_table("dataset_change_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dataset_change_requests_dataset_id"), ["dataset_id"])
        batch_op.create_index(batch_op.f("ix_dataset_change_requests_status"), ["status"])


def downgrade():
    with op.batch_alter_table("dataset_change_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dataset_change_requests_status"))
        batch_op.drop_index(batch_op.f("ix_dataset_change_requests_dataset_id"))
    op.drop_table("dataset_change_requests")
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.drop_column("withdrawal_reason")
        batch_op.drop_column("withdrawn_at")
