"""sandbox privacy budgets and releases (owner: sandbox (entity-level differential privacy))

- datasets: the privacy settings of a conditional dataset (per-query epsilon, delta, per-entity
  contribution bounds, the per-version total, declared ranges); ``dp_epsilon_budget`` is now per
  buyer organization across all its licenses. Null means the dataset's default.
- privacy_spending / privacy_version_spending: the ledgers (per organization and dataset; per
  dataset version across all buyers), charged by atomic conditional UPDATEs.
- sandbox_releases: released answers, keyed by release key and data versions (release caching).
- sandbox_queries: ``release_id``, and status ``running`` (charged, committed, engine running).
- dataset_columns: the clamp bounds the pipeline derived from the data (1st/99th percentiles)
  are cleared: bounds now come only from declared ranges.

Revision ID: c7a0d1e20710
Revises: c7a0d1e20700
"""

import sqlalchemy as sa
from alembic import op

import market.db

revision = "c7a0d1e20710"
down_revision = "c7a0d1e20700"
branch_labels = None
depends_on = None

_DATASET_COLUMNS = (
    ("dp_epsilon_per_query", sa.Numeric(precision=10, scale=4)),
    ("dp_delta", sa.Numeric(precision=20, scale=15)),
    ("dp_max_groups_per_entity", sa.Integer()),
    ("dp_max_rows_per_entity", sa.Integer()),
    ("dp_version_budget", sa.Numeric(precision=10, scale=4)),
    ("dp_ranges", sa.JSON()),
)


def upgrade():
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        for name, type_ in _DATASET_COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))
    op.create_table(
        "sandbox_releases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("release_hash", sa.String(length=64), nullable=False),
        sa.Column("data_versions", sa.String(length=1000), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("epsilon", sa.Numeric(precision=10, scale=4), nullable=False),
        sa.Column("delta", sa.Numeric(precision=20, scale=15), nullable=False),
        sa.Column("buyer_org_id", sa.Integer(), nullable=False),
        sa.Column("created_at", market.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "epsilon >= 0 AND delta >= 0", name=op.f("ck_sandbox_releases_cost_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["buyer_org_id"],
            ["organizations.id"],
            name=op.f("fk_sandbox_releases_buyer_org_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sandbox_releases")),
        sa.UniqueConstraint("release_hash", name=op.f("uq_sandbox_releases_release_hash")),
    )
    op.create_table(
        "privacy_spending",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("buyer_org_id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("epsilon_spent", sa.Numeric(precision=10, scale=4), nullable=False),
        sa.Column("delta_spent", sa.Numeric(precision=20, scale=15), nullable=False),
        sa.Column("releases", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "epsilon_spent >= 0 AND delta_spent >= 0",
            name=op.f("ck_privacy_spending_non_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["buyer_org_id"],
            ["organizations.id"],
            name=op.f("fk_privacy_spending_buyer_org_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_privacy_spending_dataset_id_datasets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_spending")),
        sa.UniqueConstraint("buyer_org_id", "dataset_id", name="uq_privacy_spending_org_dataset"),
    )
    with op.batch_alter_table("privacy_spending", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_privacy_spending_dataset_id"), ["dataset_id"], unique=False
        )
    op.create_table(
        "privacy_version_spending",
        sa.Column("version_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("epsilon_spent", sa.Numeric(precision=10, scale=4), nullable=False),
        sa.Column("delta_spent", sa.Numeric(precision=20, scale=15), nullable=False),
        sa.Column("releases", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "epsilon_spent >= 0 AND delta_spent >= 0",
            name=op.f("ck_privacy_version_spending_non_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_privacy_version_spending_dataset_id_datasets"),
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["dataset_versions.id"],
            name=op.f("fk_privacy_version_spending_version_id_dataset_versions"),
        ),
        sa.PrimaryKeyConstraint("version_id", name=op.f("pk_privacy_version_spending")),
    )
    with op.batch_alter_table("privacy_version_spending", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_privacy_version_spending_dataset_id"), ["dataset_id"], unique=False
        )
    with op.batch_alter_table("sandbox_queries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("release_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_sandbox_queries_release_id_sandbox_releases"),
            "sandbox_releases",
            ["release_id"],
            ["id"],
        )
        batch_op.drop_constraint(batch_op.f("ck_sandbox_queries_status"), type_="check")
        batch_op.create_check_constraint(
            "status", "status IN ('ok','refused','error','timeout','running')"
        )
    # Data-derived clamp bounds (raw percentiles) must not survive: bounds are declared.
    op.execute("UPDATE dataset_columns SET lower_bound = NULL, upper_bound = NULL")


def downgrade():
    op.execute("UPDATE sandbox_queries SET status = 'error' WHERE status = 'running'")
    with op.batch_alter_table("sandbox_queries", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_sandbox_queries_status"), type_="check")
        batch_op.create_check_constraint("status", "status IN ('ok','refused','error','timeout')")
        batch_op.drop_constraint(
            batch_op.f("fk_sandbox_queries_release_id_sandbox_releases"), type_="foreignkey"
        )
        batch_op.drop_column("release_id")
    with op.batch_alter_table("privacy_version_spending", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_privacy_version_spending_dataset_id"))
    op.drop_table("privacy_version_spending")
    with op.batch_alter_table("privacy_spending", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_privacy_spending_dataset_id"))
    op.drop_table("privacy_spending")
    op.drop_table("sandbox_releases")
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        for name, _ in reversed(_DATASET_COLUMNS):
            batch_op.drop_column(name)
