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


def test_a_claim_taken_over_while_its_holder_still_runs_is_charged_once(world, client):
    """The gap: A's claim expires while A still runs (a slow first question: the engine's
    one-time preparation of a big file, a loaded machine); B takes the claim over, is charged
    and runs too; A's release lands first. B gets A's release (its own draw is discarded,
    never shown or stored) and must be charged nothing: one release, one charge."""
    from market.db import utcnow
    from sandbox import app_engine
    from sandbox.models import SandboxRelease, VersionSpending

    first, second = world.party(), world.party()
    lic = world.license(second, ["loans"], quota=10)
    key = _key(world, lic.id, SQL)
    _hold(world, key, -dt.timedelta(seconds=1))  # A's claim, past its expiry; A still runs
    landed = {"columns": ["district", "n"], "column_kinds": ["dimension", "count"],
              "rows": [["A's district", 4242]], "error_bounds": [None, None], "truncated": False}
    real = app_engine.engine_for(world.app)

    class HolderLandsFirst:
        def run(self, checked, tables, **kw):
            result = real.run(checked, tables, **kw)
            world.session.add(SandboxRelease(
                release_hash=key, data_versions="loans@1", payload=landed,
                epsilon=Decimal("0.5"), delta=Decimal(0), buyer_org_id=first.org_id,
                created_at=utcnow(),
            ))
            world.session.commit()  # A stores its answer while B's engine runs
            return result

    app_engine.install(world.app, HolderLandsFirst())
    try:
        r = query(client, lic.id, SQL, second.headers)
    finally:
        app_engine.install(world.app, real)
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["rows"] == landed["rows"] and body["cached"] is True
    quota, spent, claims = _state(world, lic.id, second.org_id)
    assert (quota, spent, claims) == (9, Decimal(0), 0)  # the quota unit of an answer only
    version_spent = world.session.scalar(sa.select(sa.func.sum(VersionSpending.epsilon_spent)))
    assert Decimal(str(version_spent or 0)) == 0  # A's own charge is not simulated here
