"""user language preference (owner: i18n (the user's language))

A pre-made slot in the migration chain, so that parallel work never forks Alembic heads: its
owner writes the schema changes here; until then it changes nothing.

Revision ID: c7a0d1e20700
Revises: b6d4a0c2e306
"""

revision = "c7a0d1e20700"
down_revision = "b6d4a0c2e306"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
