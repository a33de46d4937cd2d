"""A withdrawn dataset's page: its license holders (and the department, operator, regulator)
still read it, with a clear "withdrawn" notice; everyone else gets 404."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.sandbox_app.conftest import query
from tests.sandbox_app.test_web import login


@pytest.fixture
def withdrawn(world, as_role, client):
    """A withdrawn dataset, licensed to ``holder`` before its withdrawal."""
    dept_user, dept_headers = as_role("department")
    ds = world.dataset("loans")
    ds.department_id = dept_user.organization_id
    world.session.commit()
    holder = world.party()
    lic = world.license(holder, ["loans"])
    r = client.post(f"/api/v1/datasets/{ds.id}/withdraw", json={"reason": "source retired"},
                    headers=dept_headers)
    assert r.status_code == 200, r.get_json()
    return SimpleNamespace(ds=ds, holder=holder, lic=lic, dept=dept_user)


def test_the_holder_reads_the_page_with_a_withdrawn_notice(world, client, withdrawn):
    login(client, withdrawn.holder)
    r = client.get(f"/datasets/{withdrawn.ds.id}?lang=en")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert 'data-testid="withdrawn-banner"' in html and "source retired" in html
    assert f'data-license="{withdrawn.lic.id}"' in html
    assert f'href="/sandbox/{withdrawn.lic.id}"' in html
    # Nothing to buy any more.
    assert 'data-testid="apply"' not in html
    # The sandbox keeps serving the holder, as the notice says.
    assert query(client, withdrawn.lic.id, "SELECT COUNT(*) AS n FROM loans",
                 withdrawn.holder.headers).status_code == 200
    # The API agrees.
    api = client.get(f"/api/v1/datasets/{withdrawn.ds.id}", headers=withdrawn.holder.headers)
    assert api.status_code == 200 and api.get_json()["status"] == "withdrawn"


def test_the_notice_is_in_chinese_for_a_chinese_reader(world, client, withdrawn):
    login(client, withdrawn.holder)
    html = client.get(f"/datasets/{withdrawn.ds.id}?lang=zh").get_data(as_text=True)
    assert 'data-testid="withdrawn-banner"' in html and "您在该数据集上的许可" in html


@pytest.mark.parametrize("role", ["department", "operator", "regulator"])
def test_insiders_read_the_page(world, client, withdrawn, role):
    from market.accounts.models import User

    user = (world.session.get(User, withdrawn.dept.id) if role == "department"
            else world.party(role).user)
    login(client, SimpleNamespace(user=user))
    html = client.get(f"/datasets/{withdrawn.ds.id}").get_data(as_text=True)
    assert 'data-testid="withdrawn-banner"' in html


def test_others_get_404(world, client, withdrawn, as_role):
    stranger = world.party()
    assert client.get(f"/api/v1/datasets/{withdrawn.ds.id}",
                      headers=stranger.headers).status_code == 404
    assert client.get(f"/datasets/{withdrawn.ds.id}").status_code == 404  # anonymous
    login(client, stranger)
    assert client.get(f"/datasets/{withdrawn.ds.id}").status_code == 404
    # Another department, and a buyer whose license was never granted, know nothing either.
    _, other_dept = as_role("department")
    assert client.get(f"/api/v1/datasets/{withdrawn.ds.id}",
                      headers=other_dept).status_code == 404
    applicant = world.party()
    lic = world.license(applicant, ["loans"])
    lic.status = "rejected"
    world.session.commit()
    assert client.get(f"/api/v1/datasets/{withdrawn.ds.id}",
                      headers=applicant.headers).status_code == 404
