"""scenarios products reports (owner: governance (scenarios, data products, certificates, reports))

Scenarios (场景机会清单) with their datasets, data products (数据产品) with their items, and the
scenario and product a license was granted under (``licenses.scenario_id``/``product_id``).

Revision ID: c7a0d1e20780
Revises: c7a0d1e20770
"""

import sqlalchemy as sa
from alembic import op

import market.db

revision = "c7a0d1e20780"
down_revision = "c7a0d1e20770"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "scenarios",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("title_en", sa.String(length=200), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("purposes", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", market.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", market.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", market.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decision_comment", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('draft','pending','approved','rejected')", name=op.f("ck_scenarios_status")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_scenarios_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"], ["users.id"], name=op.f("fk_scenarios_decided_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scenarios")),
        sa.UniqueConstraint("code", name=op.f("uq_scenarios_code")),
    )
    op.create_index(op.f("ix_scenarios_status"), "scenarios", ["status"])

    op.create_table(
        "scenario_datasets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scenario_id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["scenario_id"],
            ["scenarios.id"],
            name=op.f("fk_scenario_datasets_scenario_id_scenarios"),
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_scenario_datasets_dataset_id_datasets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scenario_datasets")),
        sa.UniqueConstraint("scenario_id", "dataset_id", name="uq_scenario_datasets_pair"),
    )
    op.create_index(op.f("ix_scenario_datasets_scenario_id"), "scenario_datasets", ["scenario_id"])
    op.create_index(op.f("ix_scenario_datasets_dataset_id"), "scenario_datasets", ["dataset_id"])

    op.create_table(
        "data_products",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("title_en", sa.String(length=200), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("access", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("duration_months", sa.Integer(), nullable=False),
        sa.Column("query_quota", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", market.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("published_at", market.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('draft','published','withdrawn')", name=op.f("ck_data_products_status")
        ),
        sa.CheckConstraint(
            "access IN ('sandbox','lookups','both')", name=op.f("ck_data_products_access")
        ),
        sa.CheckConstraint(
            "duration_months >= 1 AND duration_months <= 60", name=op.f("ck_data_products_duration")
        ),
        sa.CheckConstraint("query_quota >= 1", name=op.f("ck_data_products_quota")),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_data_products_created_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_products")),
        sa.UniqueConstraint("code", name=op.f("uq_data_products_code")),
    )
    op.create_index(op.f("ix_data_products_status"), "data_products", ["status"])

    op.create_table(
        "data_product_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("columns", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["data_products.id"],
            name=op.f("fk_data_product_items_product_id_data_products"),
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_data_product_items_dataset_id_datasets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_product_items")),
        sa.UniqueConstraint("product_id", "dataset_id", name="uq_data_product_items_pair"),
    )
    op.create_index(op.f("ix_data_product_items_product_id"), "data_product_items", ["product_id"])
    op.create_index(op.f("ix_data_product_items_dataset_id"), "data_product_items", ["dataset_id"])

    with op.batch_alter_table("licenses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scenario_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("product_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_licenses_scenario_id"), ["scenario_id"])
        batch_op.create_index(batch_op.f("ix_licenses_product_id"), ["product_id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_licenses_scenario_id_scenarios"), "scenarios", ["scenario_id"], ["id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_licenses_product_id_data_products"),
            "data_products",
            ["product_id"],
            ["id"],
        )


def downgrade():
    with op.batch_alter_table("licenses", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_licenses_product_id_data_products"), type_="foreignkey"
        )
        batch_op.drop_constraint(
            batch_op.f("fk_licenses_scenario_id_scenarios"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_licenses_product_id"))
        batch_op.drop_index(batch_op.f("ix_licenses_scenario_id"))
        batch_op.drop_column("product_id")
        batch_op.drop_column("scenario_id")
    op.drop_index(op.f("ix_data_product_items_dataset_id"), table_name="data_product_items")
    op.drop_index(op.f("ix_data_product_items_product_id"), table_name="data_product_items")
    op.drop_table("data_product_items")
    op.drop_index(op.f("ix_data_products_status"), table_name="data_products")
    op.drop_table("data_products")
    op.drop_index(op.f("ix_scenario_datasets_dataset_id"), table_name="scenario_datasets")
    op.drop_index(op.f("ix_scenario_datasets_scenario_id"), table_name="scenario_datasets")
    op.drop_table("scenario_datasets")
    op.drop_index(op.f("ix_scenarios_status"), table_name="scenarios")
    op.drop_table("scenarios")
