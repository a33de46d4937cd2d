"""governance grading agreements lists (owner: governance (grading, agreements, red and black lists))

Data grading (GB/T 43697-2024) on datasets, a term (``until``) on black-list entries, the red
list and subject entries of the 红黑榜, registration certificates (数据资产登记) and the
regulator's decisions on licenses for important data.

Revision ID: c7a0d1e20760
Revises: c7a0d1e20750
"""

import sqlalchemy as sa
from alembic import op

import market.db

revision = "c7a0d1e20760"
down_revision = "c7a0d1e20750"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "security_level", sa.String(length=16), server_default="general", nullable=False
            )
        )
        batch_op.create_index(batch_op.f("ix_datasets_security_level"), ["security_level"])
        batch_op.create_check_constraint(
            batch_op.f("ck_datasets_security_level"), "security_level IN ('general','important','core')"
        )

    with op.batch_alter_table("blacklist_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("until", market.db.UTCDateTime(timezone=True), nullable=True))

    op.create_table(
        "governance_list_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("list", sa.String(length=8), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=True),
        sa.Column("subject", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("until", market.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", market.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("list IN ('red','black')", name=op.f("ck_governance_list_entries_list")),
        sa.CheckConstraint(
            "(organization_id IS NULL) <> (subject IS NULL)",
            name=op.f("ck_governance_list_entries_organization_or_subject"),
        ),
        sa.CheckConstraint(
            "list = 'red' OR organization_id IS NULL",
            name=op.f("ck_governance_list_entries_black_orgs_elsewhere"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_governance_list_entries_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_governance_list_entries_created_by_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_list_entries")),
        sa.UniqueConstraint("list", "organization_id", name="uq_governance_list_entries_org"),
    )
    with op.batch_alter_table("governance_list_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_governance_list_entries_list"), ["list"])

    op.create_table(
        "registration_certificates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("certificate", sa.JSON(), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("issued_at", market.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_registration_certificates_dataset_id_datasets"),
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["dataset_versions.id"],
            name=op.f("fk_registration_certificates_version_id_dataset_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registration_certificates")),
        sa.UniqueConstraint("number", name=op.f("uq_registration_certificates_number")),
        sa.UniqueConstraint("version_id", name=op.f("uq_registration_certificates_version_id")),
    )
    with op.batch_alter_table("registration_certificates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_registration_certificates_dataset_id"), ["dataset_id"]
        )

    op.create_table(
        "license_regulator_decisions",
        sa.Column("license_id", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(length=8), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", market.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "decision IN ('approve','reject')",
            name=op.f("ck_license_regulator_decisions_decision"),
        ),
        sa.ForeignKeyConstraint(
            ["license_id"],
            ["licenses.id"],
            name=op.f("fk_license_regulator_decisions_license_id_licenses"),
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"],
            ["users.id"],
            name=op.f("fk_license_regulator_decisions_decided_by_id_users"),
        ),
        sa.PrimaryKeyConstraint("license_id", name=op.f("pk_license_regulator_decisions")),
    )


def downgrade():
    op.drop_table("license_regulator_decisions")
    with op.batch_alter_table("registration_certificates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_registration_certificates_dataset_id"))
    op.drop_table("registration_certificates")
    with op.batch_alter_table("governance_list_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_governance_list_entries_list"))
    op.drop_table("governance_list_entries")
    with op.batch_alter_table("blacklist_entries", schema=None) as batch_op:
        batch_op.drop_column("until")
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_datasets_security_level"), type_="check")
        batch_op.drop_index(batch_op.f("ix_datasets_security_level"))
        batch_op.drop_column("security_level")
