"""governance rest (owner: gov-report (regulator reports))

The app's own request-latency histogram (``http_latency_buckets``), merged across processes,
from which the monthly regulator report takes its HTTP p95.

Revision ID: c7a0d1e20850
Revises: c7a0d1e20840
"""

import sqlalchemy as sa
from alembic import op

from market.db import UTCDateTime

revision = "c7a0d1e20850"
down_revision = "c7a0d1e20840"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "http_latency_buckets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hour", UTCDateTime(timezone=True), nullable=False),
        sa.Column("route_group", sa.String(length=64), nullable=False),
        sa.Column("le_ms", sa.Integer(), nullable=False),
        sa.Column("request_count", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("request_count >= 0", name=op.f("ck_http_latency_buckets_request_count")),
        sa.CheckConstraint("le_ms > 0", name=op.f("ck_http_latency_buckets_le_ms")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_http_latency_buckets")),
        sa.UniqueConstraint("hour", "route_group", "le_ms", name="uq_http_latency_buckets_key"),
    )


def downgrade():
    op.drop_table("http_latency_buckets")
