"""The per-process cache of accepted policy checks (``sandbox.services.checks``): a repeated
question skips the sqlglot check, but never across a change of what the license grants."""

from __future__ import annotations

import pytest

from tests.sandbox_app.conftest import query

BY_INDUSTRY = "SELECT industry, COUNT(*) AS n FROM loans GROUP BY industry"
SUM_BY_DISTRICT = "SELECT district, SUM(amount) AS total FROM loans GROUP BY district"


@pytest.fixture(autouse=True)
def _empty_cache():
    from sandbox import services

    services.checks.clear()
    yield
    services.checks.clear()


def test_the_same_question_on_the_same_workspace_is_checked_once(world, monkeypatch):
    from market.accounts.actor import Actor
    from sandbox import services
    from sandbox.workspace import SandboxSettings

    calls = []
    real = services.check
    monkeypatch.setattr(services, "check", lambda sql, ctx: calls.append(sql) or real(sql, ctx))
    buyer = world.party()
    lic = world.license(buyer, ["loans"])
    _, workspace = services.workspace_of(world.session, Actor.from_user(buyer.user), lic.id, SandboxSettings())
    first = services.checks.check(BY_INDUSTRY, workspace)
    assert services.checks.check(BY_INDUSTRY, workspace) is first
    assert calls == [BY_INDUSTRY]
    # Another row cap is another workspace.
    actor = Actor.from_user(buyer.user)
    _, capped = services.workspace_of(world.session, actor, lic.id, SandboxSettings(row_cap=5))
    services.checks.check(BY_INDUSTRY, capped)
    assert calls == [BY_INDUSTRY, BY_INDUSTRY]


def test_an_accepted_check_is_not_reused_for_a_license_without_the_column(world, client):
    buyer = world.party()
    full = world.license(buyer, ["loans"])
    narrow = world.license(buyer, [("loans", ["district", "industry"])])
    assert query(client, full.id, SUM_BY_DISTRICT, buyer.headers).status_code == 200
    r = query(client, narrow.id, SUM_BY_DISTRICT, buyer.headers)
    assert r.status_code == 422 and r.get_json()["errors"]["rule"] == "not_licensed"


def test_an_accepted_check_is_not_reused_after_the_privacy_settings_change(world, client):
    from market.accounts.actor import Actor
    from sandbox import services
    from sandbox.workspace import SandboxSettings

    buyer = world.party()
    lic = world.license(buyer, ["loans"])
    _, before = services.workspace_of(world.session, Actor.from_user(buyer.user), lic.id, SandboxSettings())
    checked = services.checks.check(SUM_BY_DISTRICT, before)
    dataset = world.dataset("loans")
    dataset.dp_epsilon_per_query = checked.epsilon_cost / 2
    world.session.flush()
    world.session.expire_all()
    _, after = services.workspace_of(world.session, Actor.from_user(buyer.user), lic.id, SandboxSettings())
    again = services.checks.check(SUM_BY_DISTRICT, after)
    assert again is not checked and again.epsilon_cost == checked.epsilon_cost / 2
