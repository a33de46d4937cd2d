from __future__ import annotations

import sqlalchemy as sa

from tests.conftest import valid_uscc


def test_users_create_with_new_org_and_token(app, runner):
    from market.accounts.models import User
    from market.extensions import db

    code = valid_uscc(4242)
    r = runner.invoke(args=["users", "create", "--email", "Ops@Demo.cn", "--password", "a-long-password", "--org", "运营单位", "--kind", "operator", "--credit-code", code])
    assert r.exit_code == 0, r.output
    user = db.session.scalar(sa.select(User).where(User.email == "ops@demo.cn"))
    assert user is not None and user.organization.kind == "operator"
    r = runner.invoke(args=["token", "--email", "ops@demo.cn"])
    assert r.exit_code == 0, r.output
    token = r.output.strip().splitlines()[0]
    assert token.startswith("mk_")
    client = app.test_client()
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).get_json()["email"] == "ops@demo.cn"


def test_users_create_reports_bad_credit_code(runner):
    r = runner.invoke(args=["users", "create", "--email", "a@b.cn", "--password", "a-long-password", "--org", "X", "--kind", "buyer", "--credit-code", "91350100M000100Y44"])
    assert r.exit_code != 0
    assert "credit" in r.output.lower()


def test_users_create_needs_kind_for_new_org(runner):
    r = runner.invoke(args=["users", "create", "--email", "a@b.cn", "--password", "a-long-password", "--org", "New"])
    assert r.exit_code != 0 and "--kind" in r.output


def test_token_for_unknown_user(runner):
    r = runner.invoke(args=["token", "--email", "ghost@nowhere.cn"])
    assert r.exit_code != 0 and "No active user" in r.output
