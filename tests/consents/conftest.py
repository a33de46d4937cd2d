"""Fixtures for the consents tests: ``world`` makes buyers, enterprises (data subjects), the
operator and regulator, datasets over small Parquet files in the app's MARKET_DATA_DIR whose
entity key is the keyed pseudonym of three enterprises' credit codes, licenses and consents.
Everything is committed (and rolled back by the ``app`` fixture after the test)."""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.consents import data

_serial = itertools.count(1)


@functools.cache
def password_hash() -> str:
    from market.accounts.services import hash_password
    from tests.conftest import PASSWORD

    return hash_password(PASSWORD)


@dataclass
class Party:
    user: Any
    headers: dict[str, str]

    @property
    def org(self):
        return self.user.organization

    @property
    def org_id(self) -> int:
        return self.user.organization_id


def make_user(session, organization):
    from market.accounts.models import User

    user = User(
        email=f"ct{next(_serial)}@{organization.kind}.consents.example.cn",
        password_hash=password_hash(),
        organization=organization,
    )
    session.add(user)
    session.flush()
    return user


@dataclass
class World:
    app: Any
    session: Any
    auth_header: Any
    _datasets: dict[str, Any] = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        return Path(self.app.config["MARKET_DATA_DIR"])

    @property
    def key(self) -> bytes:
        from market.keys import pseudonym_key

        return pseudonym_key()

    def party(self, kind: str = "buyer", *, code: str | None = None, status: str = "active",
              org=None) -> Party:
        organization = org or data.org(self.session, kind, code=code, status=status)
        user = make_user(self.session, organization)
        self.session.commit()
        return Party(user, self.auth_header(user))

    def subject(self, i: int = 0, *, status: str = "active") -> Party:
        """The data subject registered with enterprise ``i``'s credit code."""
        return self.party("subject", code=data.CODES[i], status=status)

    def dataset(self, name: str):
        if name not in self._datasets:
            self._datasets[name] = data.dataset(self.session, self.data_dir, name, self.key)
            self.session.commit()
        return self._datasets[name]

    def license(self, buyer: Party, tables=("tax", "hrss", "registry"), **kw):
        pairs = []
        for entry in tables:
            name, cols = (entry, data.LICENSED[entry]) if isinstance(entry, str) else entry
            pairs.append((self.dataset(name), cols))
        lic = data.license_for(self.session, buyer.org_id, pairs, **kw)
        self.session.commit()
        return lic

    def consent(self, lic, i: int = 0, **kw):
        c = data.consent(self.session, lic, data.CODES[i], **kw)
        self.session.commit()
        return c


@pytest.fixture
def world(app, auth_header) -> World:
    from market.extensions import db

    return World(app, db.session, auth_header)


def future(days: int = 30) -> str:
    import datetime as dt

    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).isoformat()


def events(session, type_: str) -> list:
    import sqlalchemy as sa

    from market.audit.models import AuditEvent

    return list(
        session.scalars(sa.select(AuditEvent).where(AuditEvent.type == type_).order_by(AuditEvent.seq))
    )
