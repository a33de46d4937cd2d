"""Pricing parameters, quotes and revenue caps extras (owner: pricing)

Quotes learn which license an upgrade quote widens (``upgrade_of_license_id``). The
column refers to ``licenses``, which itself refers to ``quotes``; on SQLite the batch
(copy-and-move) recreates ``quotes`` with its constraints.

Revision ID: b2d4a0c2e302
Revises: b1d4a0c2e301
"""

import sqlalchemy as sa
from alembic import op

import market.db  # noqa: F401

revision = "b2d4a0c2e302"
down_revision = "b1d4a0c2e301"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("quotes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("upgrade_of_license_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_quotes_upgrade_of_license_id_licenses"),
            "licenses",
            ["upgrade_of_license_id"],
            ["id"],
        )
        batch_op.create_index(
            batch_op.f("ix_quotes_upgrade_of_license_id"), ["upgrade_of_license_id"], unique=False
        )


def downgrade():
    with op.batch_alter_table("quotes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quotes_upgrade_of_license_id"))
        batch_op.drop_constraint(
            batch_op.f("fk_quotes_upgrade_of_license_id_licenses"), type_="foreignkey"
        )
        batch_op.drop_column("upgrade_of_license_id")
