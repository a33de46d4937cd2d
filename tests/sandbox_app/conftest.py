"""Fixtures for the sandbox app tests: a factory of buyers, datasets over small Parquet files in
the app's MARKET_DATA_DIR and licenses (ORM rows), and the engine's clean-up.

The app's DuckDB engine (``sandbox.app_engine``) is created on the first query and reused by
every test of the session app; ``_close_sandbox_engines`` stops its worker processes at the end.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.sandbox_app import data

_serial = itertools.count(1)


@pytest.fixture(scope="session", autouse=True)
def _close_sandbox_engines():
    yield
    from sandbox import app_engine

    app_engine.close_all()


@functools.cache
def _password_hash() -> str:
    from market.accounts.services import hash_password
    from tests.conftest import PASSWORD

    return hash_password(PASSWORD)


@dataclass
class Party:
    user: Any
    headers: dict[str, str]

    @property
    def org_id(self) -> int:
        return self.user.organization_id


@dataclass
class World:
    """``world.buyer()``, ``world.license(...)``; everything is committed (and rolled back by
    the ``app`` fixture after the test)."""

    app: Any
    session: Any
    auth_header: Any
    _datasets: dict[str, Any] = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        return Path(self.app.config["MARKET_DATA_DIR"])

    def party(self, kind: str = "buyer") -> Party:
        from market.accounts.models import User

        organization = data.org(self.session, kind)
        user = User(
            email=f"sbx{next(_serial)}@{kind}.sandbox.example.cn",
            password_hash=_password_hash(),
            organization=organization,
        )
        self.session.add(user)
        self.session.commit()
        return Party(user, self.auth_header(user))

    def dataset(self, name: str, **kw):
        """The test's dataset over table ``name`` (made once per test unless ``slug`` differs)."""
        key = kw.get("slug") or name
        if key not in self._datasets:
            self._datasets[key] = data.dataset(self.session, self.data_dir, name, **kw)
            self.session.commit()
        return self._datasets[key]

    def license(
        self,
        buyer: Party,
        tables: Sequence[str | tuple[str, Sequence[str] | None]] = ("loans",),
        **kw,
    ):
        pairs = []
        for entry in tables:
            name, cols = (entry, None) if isinstance(entry, str) else entry
            pairs.append((self.dataset(name), cols))
        lic = data.license_for(self.session, buyer.org_id, pairs, **kw)
        self.session.commit()
        return lic


@pytest.fixture
def world(app, auth_header) -> World:
    from market.extensions import db

    return World(app, db.session, auth_header)


def query(client, lic_id: int, sql: str, headers: dict[str, str]):
    return client.post(f"/api/v1/sandbox/{lic_id}/queries", json={"sql": sql}, headers=headers)


@pytest.fixture
def empty_sandbox_caches():
    """The sandbox's process caches (accepted checks, fast-path workspaces) empty before and
    after the test."""
    from sandbox import fastpath, services

    services.checks.clear()
    fastpath.workspaces.clear()
    yield
    services.checks.clear()
    fastpath.workspaces.clear()
