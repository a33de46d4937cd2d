"""The claim on a release being made (``sandbox_release_claims``): a request that finds the
same new question in flight is charged nothing; it gets the release once stored, a 409 to
retry if the holder never finishes, and a dead holder's claim is taken over after it expires.
(The threaded race itself: ``test_concurrency.py``.)"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from tests.sandbox_app.conftest import query

SQL = "SELECT district, COUNT(*) AS n FROM loans GROUP BY district"


def _key(world, lic_id: int, sql: str) -> str:
    """The release hash the service computes for ``sql`` on this license."""
    from licenses.models import License
    from sandbox import services
    from sandbox.policy import check
    from sandbox.workspace import SandboxSettings, build_workspace

    workspace = build_workspace(world.session.get(License, lic_id), SandboxSettings())
    return services.release_hash(check(sql, workspace.context()), workspace.data_versions)


def _hold(world, key: str, expires_in: dt.timedelta) -> None:
    from market.db import utcnow
    from sandbox.models import SandboxReleaseClaim

    now = utcnow()
    world.session.add(
        SandboxReleaseClaim(release_hash=key, claimed_at=now, expires_at=now + expires_in)
    )
    world.session.commit()


def _state(world, lic_id: int, org_id: int):
    from licenses.models import License
    from sandbox.models import PrivacySpending, SandboxReleaseClaim

    world.session.expire_all()
    spent = world.session.scalar(
        sa.select(PrivacySpending.epsilon_spent).where(PrivacySpending.buyer_org_id == org_id)
    )
    claims = world.session.scalar(sa.select(sa.func.count()).select_from(SandboxReleaseClaim))
    return world.session.get(License, lic_id).quota_remaining, Decimal(str(spent or 0)), claims


def test_a_question_in_flight_that_never_lands_is_a_free_409(world, client, monkeypatch):
    from sandbox import services

    monkeypatch.setitem(world.app.config, "MARKET_SANDBOX_TIMEOUT_S", 0.2)
    monkeypatch.setattr(services, "WAIT_MARGIN_S", 0.0)
    buyer = world.party()
    lic = world.license(buyer, ["loans"], quota=10)
    _hold(world, _key(world, lic.id, SQL), dt.timedelta(minutes=5))
    r = query(client, lic.id, SQL, buyer.headers)
    assert r.status_code == 409
    assert r.get_json()["errors"]["rule"] == "release_in_flight"
    assert _state(world, lic.id, buyer.org_id) == (10, Decimal(0), 1)


def test_an_expired_claim_is_taken_over_and_released_once(world, client):
    buyer = world.party()
    lic = world.license(buyer, ["loans"], quota=10)
    _hold(world, _key(world, lic.id, SQL), -dt.timedelta(seconds=1))
    r = query(client, lic.id, SQL, buyer.headers)
    assert r.status_code == 200 and r.get_json()["cached"] is False
    assert _state(world, lic.id, buyer.org_id) == (9, Decimal("0.5"), 0)
    again = query(client, lic.id, SQL, buyer.headers)
    assert again.get_json()["cached"] is True and again.get_json()["rows"] == r.get_json()["rows"]
    assert _state(world, lic.id, buyer.org_id) == (8, Decimal("0.5"), 0)


@pytest.mark.parametrize("sql", [SQL, "SELECT SUM(amount) AS total FROM loans"])
def test_a_failed_release_frees_its_claim_and_keeps_its_charge(world, client, monkeypatch, sql):
    from sandbox import runner

    def broken(*_a, **_k):
        raise RuntimeError("noise step failed")

    buyer = world.party()
    lic = world.license(buyer, ["loans"], quota=10)
    monkeypatch.setattr(runner, "postprocess", broken)
    r = query(client, lic.id, sql, buyer.headers)
    assert r.status_code == 422 and r.get_json()["errors"]["rule"] == "execution_error"
    assert _state(world, lic.id, buyer.org_id) == (9, Decimal("0.5"), 0)
    monkeypatch.undo()
    r = query(client, lic.id, sql, buyer.headers)
    assert r.status_code == 200 and r.get_json()["cached"] is False  # a new release, paid
    assert _state(world, lic.id, buyer.org_id) == (8, Decimal("1.0"), 0)
