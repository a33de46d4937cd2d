"""Request-latency histogram rows: one count per (hour, route group, bucket), summed over every
process that served requests (each adds its own counts: ``market.metrics.recorder``)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from market.db import Base, UTCDateTime


class HttpLatencyBucket(Base):
    __tablename__ = "http_latency_buckets"
    __table_args__ = (
        sa.UniqueConstraint("hour", "route_group", "le_ms", name="uq_http_latency_buckets_key"),
        sa.CheckConstraint("request_count >= 0", name="request_count"),
        sa.CheckConstraint("le_ms > 0", name="le_ms"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The start of the UTC hour the requests ended in (a month in Asia/Shanghai is whole hours).
    hour: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    #: The blueprint that served the request (``unmatched`` for none), e.g. ``sandbox_api``.
    route_group: Mapped[str] = mapped_column(sa.String(64))
    #: The bucket's upper bound in ms (``market.metrics.histogram``).
    le_ms: Mapped[int] = mapped_column(sa.Integer)
    request_count: Mapped[int] = mapped_column(sa.BigInteger)
