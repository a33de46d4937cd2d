"""agreements and reports (owner: agreements and reports (agreements))

Department authorization agreements (授权运营协议) and the departments' registered signing
keys. Regulator reports are computed on demand and need no table.

Revision ID: c7a0d1e20810
Revises: c7a0d1e20800
"""

import sqlalchemy as sa
from alembic import op

import market.db

revision = "c7a0d1e20810"
down_revision = "c7a0d1e20800"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "department_signing_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("registered_by_id", sa.Integer(), nullable=True),
        sa.Column("registered_at", market.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", market.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_department_signing_keys_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["registered_by_id"],
            ["users.id"],
            name=op.f("fk_department_signing_keys_registered_by_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_department_signing_keys")),
        sa.UniqueConstraint("organization_id", "key_id", name="uq_department_signing_keys_key"),
    )
    with op.batch_alter_table("department_signing_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_department_signing_keys_organization_id"), ["organization_id"]
        )

    op.create_table(
        "authorization_agreements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("dataset_ids", sa.JSON(), nullable=False),
        sa.Column("starts_at", market.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", market.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revenue_share_bps", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("key_origin", sa.String(length=12), nullable=False),
        sa.Column("department_key_id", sa.String(length=16), nullable=True),
        sa.Column("department_public_key", sa.String(length=64), nullable=True),
        sa.Column("department_signature", sa.String(length=128), nullable=True),
        sa.Column("operator_key_id", sa.String(length=16), nullable=True),
        sa.Column("operator_signature", sa.String(length=128), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", market.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("signed_at", market.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("countersigned_by_id", sa.Integer(), nullable=True),
        sa.Column("countersigned_at", market.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("expired_at", market.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('draft','proposed','active','declined','expired')",
            name=op.f("ck_authorization_agreements_status"),
        ),
        sa.CheckConstraint(
            "revenue_share_bps >= 0 AND revenue_share_bps <= 10000",
            name=op.f("ck_authorization_agreements_revenue_share_bps"),
        ),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_authorization_agreements_term")),
        sa.CheckConstraint(
            "key_origin IN ('registered','custodial')",
            name=op.f("ck_authorization_agreements_key_origin"),
        ),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["organizations.id"],
            name=op.f("fk_authorization_agreements_department_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_authorization_agreements_created_by_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["countersigned_by_id"],
            ["users.id"],
            name=op.f("fk_authorization_agreements_countersigned_by_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authorization_agreements")),
        sa.UniqueConstraint("number", name=op.f("uq_authorization_agreements_number")),
    )
    with op.batch_alter_table("authorization_agreements", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_authorization_agreements_department_id"), ["department_id"]
        )
        batch_op.create_index(batch_op.f("ix_authorization_agreements_status"), ["status"])
        batch_op.create_index(batch_op.f("ix_authorization_agreements_ends_at"), ["ends_at"])


def downgrade():
    with op.batch_alter_table("authorization_agreements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authorization_agreements_ends_at"))
        batch_op.drop_index(batch_op.f("ix_authorization_agreements_status"))
        batch_op.drop_index(batch_op.f("ix_authorization_agreements_department_id"))
    op.drop_table("authorization_agreements")
    with op.batch_alter_table("department_signing_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_department_signing_keys_organization_id"))
    op.drop_table("department_signing_keys")
