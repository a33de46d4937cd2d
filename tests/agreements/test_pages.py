"""The agreements and report pages through the browser session: a department proposes, the
operator countersigns, the regulator reads; forms carry CSRF; other roles are refused."""

from __future__ import annotations

from tests.licenses_app.test_web import login


def test_department_proposes_operator_countersigns_regulator_reads(client, market, make_org):
    from market.accounts.models import User
    from market.extensions import db
    from tests.licenses_app.conftest import Party, _password_hash

    org = make_org("department", agreement=False)
    user = User(email="dept-pages@agreements.example.cn", password_hash=_password_hash(),
                organization=org)
    db.session.add(user)
    db.session.commit()
    department = Party(user, {})

    token = login(client, department)
    page = client.get("/agreements").get_data(as_text=True)
    assert 'data-testid="agreements-empty"' in page and 'data-testid="propose-form"' in page
    # A form error sits next to its field.
    r = client.post("/agreements", data={"csrf_token": token, "categories": "",
                                         "starts_on": "2026-01-01", "ends_on": "2030-01-01",
                                         "revenue_share_bps": "9000"})
    assert r.status_code == 422
    assert 'data-field="categories"' in r.get_data(as_text=True)
    r = client.post("/agreements", data={"csrf_token": token, "categories": "tax, social",
                                         "starts_on": "2026-01-01", "ends_on": "2030-01-01",
                                         "revenue_share_bps": "8000"})
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    detail = r.headers["Location"]
    page = client.get(detail).get_data(as_text=True)
    assert "80.00%" in page and 'data-testid="countersign"' not in page
    client.post("/logout", data={"csrf_token": token})

    token = login(client, market.operator)
    page = client.get(detail).get_data(as_text=True)
    assert 'data-testid="countersign"' in page
    agreement_id = int(detail.rstrip("/").rsplit("/", 1)[1])
    r = client.post(f"/agreements/{agreement_id}/countersign", data={"csrf_token": token})
    assert r.status_code == 302
    page = client.get(detail).get_data(as_text=True)
    assert 'data-testid="countersign"' not in page
    doc = client.get(f"/agreements/{agreement_id}/document.json")
    assert doc.status_code == 200 and doc.get_json()["operator_signature"]["signature"]
    client.post("/logout", data={"csrf_token": token})

    login(client, market.regulator)
    assert client.get(detail).status_code == 200
    page = client.get("/reports").get_data(as_text=True)
    assert "built-in method" not in page and 'data-testid="report-kpis"' in page
    page = client.get("/reports?period=2026-13").get_data(as_text=True)
    assert 'data-testid="report-error"' in page
    pdf = client.get("/reports/2020-01.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")


def test_other_roles_are_refused(client, market):
    buyer = market.buyer
    login(client, buyer)
    assert client.get("/agreements").status_code == 403
    assert client.get("/reports").status_code == 403
    assert client.get("/reports/2020-01.csv").status_code == 403


def test_another_department_cannot_see_an_agreement(client, market):
    from market.agreements import services
    from market.extensions import db

    owner = market.department()
    agreement = services.seed_default_agreement(db.session, owner)
    db.session.commit()
    stranger = market.party("department")
    login(client, stranger)
    assert client.get(f"/agreements/{agreement.id}").status_code == 404
    assert client.get(f"/agreements/{agreement.id}/document.json").status_code == 404
