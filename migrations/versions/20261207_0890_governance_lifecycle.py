"""governance lifecycle (owner: gov-life (agreements, scenarios, security levels))

Scenario terms and withdrawal, department key revocation (who and why), and security-level
change requests of datasets (GB/T 43697).

Revision ID: c7a0d1e20890
Revises: c7a0d1e20880
"""

import sqlalchemy as sa
from alembic import op

from market.db import UTCDateTime

revision = "c7a0d1e20890"
down_revision = "c7a0d1e20880"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("scenarios", schema=None) as batch_op:
        batch_op.add_column(sa.Column("starts_at", UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("ends_at", UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("withdrawn_at", UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("withdrawn_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("withdrawal_reason", sa.Text(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_scenarios_withdrawn_by_id_users"), "users", ["withdrawn_by_id"], ["id"]
        )
        batch_op.drop_constraint(batch_op.f("ck_scenarios_status"), type_="check")
        batch_op.create_check_constraint(
            "status", "status IN ('draft','pending','approved','rejected','withdrawn')"
        )
    with op.batch_alter_table("department_signing_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revoked_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("revocation_reason", sa.Text(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_department_signing_keys_revoked_by_id_users"),
            "users", ["revoked_by_id"], ["id"],
        )
    op.create_table(
        "security_level_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("from_level", sa.String(length=16), nullable=False),
        sa.Column("to_level", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("requested_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("operator_decision", sa.String(length=8), nullable=True),
        sa.Column("operator_by_id", sa.Integer(), nullable=True),
        sa.Column("operator_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("regulator_decision", sa.String(length=8), nullable=True),
        sa.Column("regulator_by_id", sa.Integer(), nullable=True),
        sa.Column("regulator_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("applied_at", UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending','applied','rejected')",
            name=op.f("ck_security_level_changes_status"),
        ),
        sa.CheckConstraint(
            "from_level IN ('general','important')",
            name=op.f("ck_security_level_changes_from_level"),
        ),
        sa.CheckConstraint(
            "to_level IN ('general','important')", name=op.f("ck_security_level_changes_to_level")
        ),
        sa.CheckConstraint(
            "from_level <> to_level", name=op.f("ck_security_level_changes_changes")
        ),
        sa.CheckConstraint(
            "operator_decision IS NULL OR operator_decision IN ('approve','reject')",
            name=op.f("ck_security_level_changes_operator_decision"),
        ),
        sa.CheckConstraint(
            "regulator_decision IS NULL OR regulator_decision IN ('approve','reject')",
            name=op.f("ck_security_level_changes_regulator_decision"),
        ),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"],
                                name=op.f("fk_security_level_changes_dataset_id_datasets")),
        sa.ForeignKeyConstraint(["requested_by_id"], ["users.id"],
                                name=op.f("fk_security_level_changes_requested_by_id_users")),
        sa.ForeignKeyConstraint(["operator_by_id"], ["users.id"],
                                name=op.f("fk_security_level_changes_operator_by_id_users")),
        sa.ForeignKeyConstraint(["regulator_by_id"], ["users.id"],
                                name=op.f("fk_security_level_changes_regulator_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_level_changes")),
    )
    with op.batch_alter_table("security_level_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_security_level_changes_dataset_id"), ["dataset_id"])
        batch_op.create_index(batch_op.f("ix_security_level_changes_status"), ["status"])


def downgrade():
    with op.batch_alter_table("security_level_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_security_level_changes_status"))
        batch_op.drop_index(batch_op.f("ix_security_level_changes_dataset_id"))
    op.drop_table("security_level_changes")
    with op.batch_alter_table("department_signing_keys", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_department_signing_keys_revoked_by_id_users"), type_="foreignkey"
        )
        batch_op.drop_column("revocation_reason")
        batch_op.drop_column("revoked_by_id")
    # A withdrawn scenario has no place in the older schema: it goes back to rejected.
    op.execute("UPDATE scenarios SET status = 'rejected' WHERE status = 'withdrawn'")
    with op.batch_alter_table("scenarios", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_scenarios_status"), type_="check")
        batch_op.create_check_constraint(
            "status", "status IN ('draft','pending','approved','rejected')"
        )
        batch_op.drop_constraint(batch_op.f("fk_scenarios_withdrawn_by_id_users"), type_="foreignkey")
        batch_op.drop_column("withdrawal_reason")
        batch_op.drop_column("withdrawn_by_id")
        batch_op.drop_column("withdrawn_at")
        batch_op.drop_column("ends_at")
        batch_op.drop_column("starts_at")
