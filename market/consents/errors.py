"""Typed errors of the consents area."""

from __future__ import annotations

from market.errors import DomainError


class RecordsUnavailable(Exception):
    """A licensed table's Parquet file cannot be read (missing or unreadable). Pure code
    raises it; the services turn it into :class:`ServiceUnavailable`."""

    def __init__(self, slug: str):
        super().__init__(f"the data of table {slug} cannot be read")
        self.slug = slug


class ServiceUnavailable(DomainError):
    status = 503
