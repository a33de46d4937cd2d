"""license review and refund by use (owner: licenses (free-license review, refunds by use, revocation))

- licenses: ``free_use_justification``, the buyer's reason for a free (public-welfare)
  license, which always goes to the operator's review.
- public_welfare_bodies: the operator's whitelist of organizations eligible for free
  licenses (besides those whose credit code says they are public bodies).
- refunds: ``provider_ref``, ``attempts`` and ``last_error``: a Stripe refund that failed on
  revocation becomes a pending credit note that the operator retries with the same reference.

Revision ID: c7a0d1e20770
Revises: c7a0d1e20760
"""

import sqlalchemy as sa
from alembic import op

import market.db

revision = "c7a0d1e20770"
down_revision = "c7a0d1e20760"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("licenses") as batch:
        batch.add_column(sa.Column("free_use_justification", sa.Text(), nullable=True))
    with op.batch_alter_table("refunds") as batch:
        batch.add_column(sa.Column("provider_ref", sa.String(length=80), nullable=True))
        batch.add_column(
            sa.Column("attempts", sa.Integer(), server_default="0", nullable=False)
        )
        batch.add_column(sa.Column("last_error", sa.String(length=200), nullable=True))
    op.create_table(
        "public_welfare_bodies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", market.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_public_welfare_bodies_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_public_welfare_bodies_created_by_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_public_welfare_bodies")),
        sa.UniqueConstraint(
            "organization_id", name=op.f("uq_public_welfare_bodies_organization_id")
        ),
    )


def downgrade():
    op.drop_table("public_welfare_bodies")
    with op.batch_alter_table("refunds") as batch:
        batch.drop_column("last_error")
        batch.drop_column("attempts")
        batch.drop_column("provider_ref")
    with op.batch_alter_table("licenses") as batch:
        batch.drop_column("free_use_justification")
