"""Fixtures of the scenario and data-product tests: listed, priceable datasets (the pricing
tests' factory) and a ``world`` with an operator, a regulator, two buyers and two datasets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.catalog.conftest import login  # noqa: F401
from tests.quotes.conftest import make_dataset  # noqa: F401


@dataclass
class World:
    operator: dict
    regulator: dict
    buyer: dict
    buyer_user: Any
    other_buyer: dict
    department: dict
    department_org: Any
    registry: Any
    tax: Any
    users: dict


@pytest.fixture
def world(as_role, make_dataset, make_user, auth_header) -> World:  # noqa: F811
    operator_user, operator = as_role("operator")
    regulator_user, regulator = as_role("regulator")
    buyer_user, buyer = as_role("buyer")
    _, other_buyer = as_role("buyer")
    dept_user = make_user("department")
    registry = make_dataset(category="market_supervision", department=dept_user.organization)
    tax = make_dataset(category="tax")
    return World(operator, regulator, buyer, buyer_user, other_buyer,
                 auth_header(dept_user), dept_user.organization, registry, tax,
                 {"operator": operator_user, "regulator": regulator_user, "buyer": buyer_user,
                  "department": dept_user})


def scenario_body(world: World, **over) -> dict:
    body = {
        "code": "inclusive-finance",
        "title": "普惠金融·小微企业信贷",
        "title_en": "Inclusive finance: SME credit",
        "description": "银行在企业授权下查询登记、纳税等信息用于小微企业信贷审批。",
        "dataset_ids": [world.registry.id, world.tax.id],
        "purposes": ["internal_risk_control"],
    }
    body.update(over)
    return body


def product_body(world: World, **over) -> dict:
    body = {
        "code": "sme-credit",
        "title": "小微企业信贷数据产品",
        "title_en": "SME credit data product",
        "description": "登记 + 纳税，授权查询。",
        "access": "lookups",
        "purpose": "internal_risk_control",
        "duration_months": 12,
        "query_quota": 1000,
        "items": [
            {"dataset_id": world.registry.id, "columns": ["industry", "district"]},
            {"dataset_id": world.tax.id, "columns": None},
        ],
    }
    body.update(over)
    return body


def approved_scenario(client, world: World, **over) -> dict:
    r = client.post("/api/v1/scenarios", json=scenario_body(world, **over),
                    headers=world.operator)
    assert r.status_code == 201, r.get_json()
    sid = r.get_json()["id"]
    assert client.post(f"/api/v1/scenarios/{sid}/submit", headers=world.operator).status_code == 200
    r = client.post(f"/api/v1/scenarios/{sid}/decision", json={"decision": "approve"},
                    headers=world.regulator)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def published_product(client, world: World, **over) -> dict:
    r = client.post("/api/v1/products", json=product_body(world, **over), headers=world.operator)
    assert r.status_code == 201, r.get_json()
    pid = r.get_json()["id"]
    r = client.post(f"/api/v1/products/{pid}/status", json={"action": "publish"},
                    headers=world.operator)
    assert r.status_code == 200, r.get_json()
    return r.get_json()
