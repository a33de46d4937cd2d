"""sandbox release flight (owner: sandbox releases (dp-finish))

- sandbox_release_claims: the release a first asker is making. Concurrent askers of the same
  new question wait for it instead of drawing and paying for a second noisy release.

Revision ID: c7a0d1e20820
Revises: c7a0d1e20810
"""

import sqlalchemy as sa
from alembic import op

import market.db

revision = "c7a0d1e20820"
down_revision = "c7a0d1e20810"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "sandbox_release_claims",
        sa.Column("release_hash", sa.String(length=64), nullable=False),
        sa.Column("query_id", sa.Integer(), nullable=True),
        sa.Column("claimed_at", market.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", market.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["query_id"],
            ["sandbox_queries.id"],
            name=op.f("fk_sandbox_release_claims_query_id_sandbox_queries"),
        ),
        sa.PrimaryKeyConstraint("release_hash", name=op.f("pk_sandbox_release_claims")),
    )


def downgrade():
    op.drop_table("sandbox_release_claims")
