"""Consents (授权查询) and lookups (owner: consents)

- consents: a bank's request to look up one enterprise's records under one license, and the
  answer (granted in the platform, denied, or granted by a recorded paper letter; revoked).
  The enterprise is named by its credit code; ``(license_id, subject_credit_code)`` finds
  the consent a lookup needs. No pseudonym is stored.
- lookups: one row per consented lookup: which tables and how many rows, never the rows.

Revision ID: b5d4a0c2e305
Revises: b4d4a0c2e304
"""

import sqlalchemy as sa
from alembic import op

import market.db

revision = "b5d4a0c2e305"
down_revision = "b4d4a0c2e304"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "consents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("license_id", sa.Integer(), nullable=False),
        sa.Column("buyer_org_id", sa.Integer(), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("subject_credit_code", sa.String(length=18), nullable=False),
        sa.Column("subject_org_id", sa.Integer(), nullable=True),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("valid_until", market.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("authorization_reference", sa.String(length=200), nullable=True),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", market.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_by_id", sa.Integer(), nullable=True),
        sa.Column("revoked_at", market.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", market.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('requested','granted','denied','revoked')",
            name=op.f("ck_consents_status"),
        ),
        sa.CheckConstraint(
            "length(subject_credit_code) = 18", name=op.f("ck_consents_credit_code_length")
        ),
        sa.ForeignKeyConstraint(
            ["license_id"], ["licenses.id"], name=op.f("fk_consents_license_id_licenses")
        ),
        sa.ForeignKeyConstraint(
            ["buyer_org_id"],
            ["organizations.id"],
            name=op.f("fk_consents_buyer_org_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_id"], ["users.id"], name=op.f("fk_consents_requested_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["subject_org_id"],
            ["organizations.id"],
            name=op.f("fk_consents_subject_org_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"], ["users.id"], name=op.f("fk_consents_decided_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["revoked_by_id"], ["users.id"], name=op.f("fk_consents_revoked_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
    )
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consents_buyer_org_id"), ["buyer_org_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_consents_subject_credit_code"), ["subject_credit_code"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_consents_subject_org_id"), ["subject_org_id"], unique=False
        )
        batch_op.create_index(
            "ix_consents_license_subject", ["license_id", "subject_credit_code"], unique=False
        )

    op.create_table(
        "lookups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consent_id", sa.Integer(), nullable=False),
        sa.Column("license_id", sa.Integer(), nullable=False),
        sa.Column("buyer_org_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("subject_org_id", sa.Integer(), nullable=True),
        sa.Column("tables", sa.JSON(), nullable=False),
        sa.Column("row_counts", sa.JSON(), nullable=False),
        sa.Column("created_at", market.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["consent_id"], ["consents.id"], name=op.f("fk_lookups_consent_id_consents")
        ),
        sa.ForeignKeyConstraint(
            ["license_id"], ["licenses.id"], name=op.f("fk_lookups_license_id_licenses")
        ),
        sa.ForeignKeyConstraint(
            ["buyer_org_id"],
            ["organizations.id"],
            name=op.f("fk_lookups_buyer_org_id_organizations"),
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_lookups_user_id_users")),
        sa.ForeignKeyConstraint(
            ["subject_org_id"],
            ["organizations.id"],
            name=op.f("fk_lookups_subject_org_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lookups")),
    )
    with op.batch_alter_table("lookups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lookups_buyer_org_id"), ["buyer_org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_lookups_consent_id"), ["consent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_lookups_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_lookups_license_id"), ["license_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_lookups_subject_org_id"), ["subject_org_id"], unique=False
        )


def downgrade():
    with op.batch_alter_table("lookups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lookups_subject_org_id"))
        batch_op.drop_index(batch_op.f("ix_lookups_license_id"))
        batch_op.drop_index(batch_op.f("ix_lookups_created_at"))
        batch_op.drop_index(batch_op.f("ix_lookups_consent_id"))
        batch_op.drop_index(batch_op.f("ix_lookups_buyer_org_id"))
    op.drop_table("lookups")
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.drop_index("ix_consents_license_subject")
        batch_op.drop_index(batch_op.f("ix_consents_subject_org_id"))
        batch_op.drop_index(batch_op.f("ix_consents_subject_credit_code"))
        batch_op.drop_index(batch_op.f("ix_consents_buyer_org_id"))
    op.drop_table("consents")
