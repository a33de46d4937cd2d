"""The demo seeds the pilot's scenarios and its 普惠金融 product through the real services,
idempotently; the demo bank's license records both."""

from __future__ import annotations

import sqlalchemy as sa


def test_the_demo_seeds_the_pilot_scenarios_and_product(app):
    from licenses.models import License
    from market.audit.models import AuditEvent
    from market.demo_seed import seed_demo
    from market.extensions import db
    from market.scenarios.demo import PRODUCTS, SCENARIOS
    from market.scenarios.models import DataProduct, Scenario

    report = seed_demo(rows=40)
    scenarios = {s.code: s for s in db.session.scalars(sa.select(Scenario))}
    assert scenarios["inclusive-finance-sme-credit"].status == "approved"
    assert scenarios["enterprise-environmental-credit"].status == "pending"  # regulator's queue
    (product,) = db.session.scalars(sa.select(DataProduct)).all()
    assert product.status == "published" and product.access == "both"
    assert len(product.items) == 5 and all(i.columns is None for i in product.items)
    (lic,) = db.session.scalars(sa.select(License).where(License.product_id == product.id))
    assert lic.status == "active" and lic.buyer_org_id == report.orgs["buyer_ccb"].id
    assert lic.scenario_id == scenarios["inclusive-finance-sme-credit"].id
    types = set(db.session.scalars(sa.select(AuditEvent.type)))
    assert {"scenario.created", "scenario.approved", "product.published",
            "product.applied", "license.activated"} <= types
    assert any("普惠金融" in n and "price" in n for n in report.notes)

    again = seed_demo(rows=40)
    assert db.session.scalar(sa.select(sa.func.count(Scenario.id))) == len(SCENARIOS)
    assert db.session.scalar(sa.select(sa.func.count(DataProduct.id))) == len(PRODUCTS)
    assert db.session.scalar(
        sa.select(sa.func.count(License.id)).where(License.product_id == product.id)) == 1
    assert any("existing, active" in n for n in again.notes)
