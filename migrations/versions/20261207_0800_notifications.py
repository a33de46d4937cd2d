"""notifications (owner: notifications outbox (buyer-ux))

A pre-made slot in the migration chain, so that parallel work never forks Alembic heads: its
owner writes the schema changes here; until then it changes nothing.

Revision ID: c7a0d1e20800
Revises: c7a0d1e20790
"""

revision = "c7a0d1e20800"
down_revision = "c7a0d1e20790"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
