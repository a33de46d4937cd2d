"""Dataset publication: pipeline jobs and catalogue extras (owner: datasets)

``datasets.confidential`` keeps the 涉密 declaration of refused uploads for audit;
``dataset_versions.treatment_overrides`` carries the department's treatment choices from the
upload request to the background job.

Revision ID: b1d4a0c2e301
Revises: 68d0bc5868e3
"""
import sqlalchemy as sa
from alembic import op

import market.db  # noqa: F401

revision = "b1d4a0c2e301"
down_revision = "68d0bc5868e3"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("confidential", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("dataset_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("treatment_overrides", sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table("dataset_versions", schema=None) as batch_op:
        batch_op.drop_column("treatment_overrides")
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.drop_column("confidential")
