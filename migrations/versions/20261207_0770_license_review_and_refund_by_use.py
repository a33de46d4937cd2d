"""license review and refund by use (owner: licenses (free-license review, refunds by use, revocation))

A pre-made slot in the migration chain, so that parallel work never forks Alembic heads: its
owner writes the schema changes here; until then it changes nothing.

Revision ID: c7a0d1e20770
Revises: c7a0d1e20760
"""

revision = "c7a0d1e20770"
down_revision = "c7a0d1e20760"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
