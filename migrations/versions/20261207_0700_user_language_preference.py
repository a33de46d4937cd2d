"""user language preference (owner: i18n (the user's language))

``users.language``: the language a user chose (``zh`` or ``en``), or NULL for "not chosen"
(pages then follow the cookie, the caller's Accept-Language for API clients, else Chinese).

Revision ID: c7a0d1e20700
Revises: b6d4a0c2e306
"""

import sqlalchemy as sa
from alembic import op

revision = "c7a0d1e20700"
down_revision = "b6d4a0c2e306"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=8), nullable=True))


def downgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("language")
