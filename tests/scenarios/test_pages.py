"""Pages of scenarios and data products, through the same services: the operator drafts and
submits, the regulator decides, the operator composes and publishes, a buyer applies; roles
are checked; the pages read in Chinese too."""

from __future__ import annotations

import re

import sqlalchemy as sa

from tests.scenarios.conftest import approved_scenario, published_product


class FormClient:
    """Posts forms as a browser does: with the CSRF token of the session's pages."""

    def __init__(self, client):
        self.client = client

    def get(self, *args, **kwargs):
        return self.client.get(*args, **kwargs)

    def post(self, path: str, data: dict):
        page = self.client.get("/scenarios/").get_data(as_text=True)
        token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)
        return self.client.post(path, data={**data, "csrf_token": token})


def test_the_whole_flow_through_the_pages(client, world, login):
    from licenses.models import License
    from market.extensions import db
    from market.scenarios.models import DataProduct, Scenario

    client = FormClient(client)
    login(world.users["operator"])
    r = client.post("/scenarios/new", data={
        "code": "env-credit", "title": "企业环境信用评价", "title_en": "Environmental credit",
        "description": "生态环境部门的处罚与企业登记信息用于企业环境信用评价。",
        "dataset_ids": [world.registry.id, world.tax.id], "purposes": ["research"],
    })
    assert r.status_code == 302, r.get_data(as_text=True)
    scenario = db.session.scalar(sa.select(Scenario).where(Scenario.code == "env-credit"))
    assert scenario.status == "draft"
    r = client.post(f"/scenarios/{scenario.id}", data={"action": "submit"})
    assert r.status_code == 302
    login(world.users["regulator"])
    page = client.get(f"/scenarios/{scenario.id}").get_data(as_text=True)
    assert 'data-testid="scenario-decision"' in page
    r = client.post(f"/scenarios/{scenario.id}", data={"action": "decide", "decision": "reject"})
    assert r.status_code == 422  # a rejection needs a comment, shown next to the field
    assert 'data-field="comment"' in r.get_data(as_text=True)
    r = client.post(f"/scenarios/{scenario.id}", data={"action": "decide", "decision": "approve"})
    assert r.status_code == 302
    db.session.refresh(scenario)
    assert scenario.status == "approved"

    login(world.users["operator"])
    r = client.post("/products/new", data={
        "code": "env-product", "title": "环境信用数据产品", "title_en": "Env credit product",
        "description": "登记 + 纳税", "access": "sandbox", "purpose": "research",
        "duration_months": "6", "query_quota": "200",
        "dataset_ids": [str(world.registry.id), str(world.tax.id)],
        f"columns-{world.registry.id}": ["industry"],
    })
    assert r.status_code == 302, r.get_data(as_text=True)
    product = db.session.scalar(sa.select(DataProduct).where(DataProduct.code == "env-product"))
    assert {i.dataset_id: i.columns for i in product.items} == {
        world.registry.id: ["industry"], world.tax.id: None}
    assert client.post(f"/products/{product.id}", data={"action": "publish"}).status_code == 302

    login(world.users["buyer"])
    page = client.get(f"/products/{product.id}").get_data(as_text=True)
    assert 'data-testid="product-apply-form"' in page
    r = client.post(f"/products/{product.id}", data={
        "action": "apply", "scenario_id": str(scenario.id), "purpose_statement": "环境信用研究"})
    assert r.status_code == 302, r.get_data(as_text=True)
    lic = db.session.scalar(sa.select(License).where(License.product_id == product.id))
    assert lic.scenario_id == scenario.id and r.headers["Location"].endswith(f"/licenses/{lic.id}")


def test_roles_on_the_pages(client, world, login):
    scenario = approved_scenario(client, world)
    product = published_product(client, world)
    client = FormClient(client)
    login(world.users["buyer"])
    assert client.get("/scenarios/new").status_code == 403
    assert client.get("/products/new").status_code == 403
    assert client.post(f"/products/{product['id']}",
                       data={"action": "withdraw"}).status_code == 403
    assert client.post(f"/scenarios/{scenario['id']}",
                       data={"action": "decide", "decision": "approve"}).status_code == 403
    login(world.users["operator"])
    r = client.post(f"/products/{product['id']}", data={
        "action": "apply", "scenario_id": str(scenario["id"]), "purpose_statement": "x"})
    assert r.status_code == 403
    assert client.get("/scenarios/revenue").status_code == 200


def test_drafts_are_hidden_and_the_pages_read_in_chinese(client, world):
    draft = client.post("/api/v1/scenarios", json={
        "code": "hidden", "title": "未审场景", "description": "x",
        "dataset_ids": [world.registry.id], "purposes": ["research"],
    }, headers=world.operator).get_json()
    approved_scenario(client, world)
    published_product(client, world)
    assert client.get(f"/scenarios/{draft['id']}").status_code == 404
    zh = {"Accept-Language": "zh-CN"}
    page = client.get("/scenarios/", headers=zh).get_data(as_text=True)
    assert "普惠金融·小微企业信贷" in page and "未审场景" not in page
    assert "场景" in page and "Allowed purposes" not in page
    page = client.get("/products/", headers=zh).get_data(as_text=True)
    assert "小微企业信贷数据产品" in page and "授权查询" in page
    page = client.get("/products/?lang=en").get_data(as_text=True)
    assert "SME credit data product" in page and "Consented lookups" in page
