"""pricing caps approval and categories (owner: pricing (caps, ceilings, categories))

- ``pricing_proposals``: ceilings and revenue caps proposed by the operator, approved or
  rejected by the regulator.
- Stored parameter versions are brought to the one category vocabulary: the legacy key
  ``ecology_environment`` becomes ``environment``, and the retired scarcity/freshness fields
  are dropped (model revision 2 no longer has them). The downgrade leaves the versions as
  they are: the old code ignored neither the new keys nor the missing fields silently, and
  rewriting history twice would be worse than keeping the vocabulary's names.

Revision ID: c7a0d1e20720
Revises: c7a0d1e20710
"""

import sqlalchemy as sa
from alembic import op

import market.db

revision = "c7a0d1e20720"
down_revision = "c7a0d1e20710"
branch_labels = None
depends_on = None

LEGACY_ALIASES = {"ecology_environment": "environment"}
RETIRED = ("scarcity_min", "scarcity_max", "freshness_min", "freshness_max")
CATEGORY_FIELDS = (
    "category_coefficients",
    "category_ceilings_fen",
    "revenue_caps_fen",
    "category_query_ceilings_fen",
)


def _upgrade_params(params: dict) -> dict:
    # A copy of pricing.upgrade_legacy as it is today: a migration must not change meaning
    # when the package does.
    out = {k: v for k, v in params.items() if k not in RETIRED}
    for name in CATEGORY_FIELDS:
        value = out.get(name)
        if isinstance(value, dict):
            renamed = {}
            for key, v in value.items():
                new = LEGACY_ALIASES.get(key, key)
                if new not in renamed or new == key:
                    renamed[new] = v
            out[name] = renamed
    return out


def upgrade():
    op.create_table(
        "pricing_proposals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("based_on_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("proposed_by_id", sa.Integer(), nullable=True),
        sa.Column("proposed_at", market.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", market.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("result_version", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending','approved','rejected')",
            name=op.f("ck_pricing_proposals_status"),
        ),
        sa.ForeignKeyConstraint(
            ["proposed_by_id"], ["users.id"], name=op.f("fk_pricing_proposals_proposed_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"], ["users.id"], name=op.f("fk_pricing_proposals_decided_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pricing_proposals")),
    )
    with op.batch_alter_table("pricing_proposals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pricing_proposals_status"), ["status"], unique=False)

    sets = sa.table(
        "pricing_parameter_sets", sa.column("id", sa.Integer()), sa.column("params", sa.JSON())
    )
    bind = op.get_bind()
    for row_id, params in bind.execute(sa.select(sets.c.id, sets.c.params)).all():
        if isinstance(params, dict):
            upgraded = _upgrade_params(params)
            if upgraded != params:
                bind.execute(sets.update().where(sets.c.id == row_id).values(params=upgraded))


def downgrade():
    with op.batch_alter_table("pricing_proposals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pricing_proposals_status"))
    op.drop_table("pricing_proposals")
