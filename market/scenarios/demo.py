"""Demo seeding step: the Shanghai pilot's scenarios and its 普惠金融 data product.

Data tables first (``SCENARIOS``, ``PRODUCTS``), then one idempotent step that goes through
the real services (operator drafts and submits, regulator approves, operator composes and
publishes; the demo bank applies, the operator reviews, the invoice is settled), each audited.
It runs before the consented-lookup step, which then finds the bank's active 普惠金融 license
and seeds the enterprise's consent on it: the demo's bank credit flow *is* the product.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import current_app

from licenses import payments
from licenses import services as licenses
from licenses.states import LicenseStatus
from market.accounts.actor import Actor
from market.accounts.models import Organization, User
from market.datasets.models import Dataset, VersionStatus
from market.extensions import db
from market.scenarios import services
from market.scenarios.models import DataProduct, ProductStatus, Scenario, ScenarioStatus


@dataclass(frozen=True)
class DemoScenario:
    code: str
    title: str
    title_en: str
    description: str
    #: market.demo department keys whose listed dataset the scenario may use.
    departments: tuple[str, ...]
    purposes: tuple[str, ...]
    #: The regulator approves it in the demo; otherwise it waits in the regulator's queue.
    approve: bool


@dataclass(frozen=True)
class DemoProduct:
    code: str
    title: str
    title_en: str
    description: str
    departments: tuple[str, ...]
    access: str
    purpose: str
    duration_months: int
    query_quota: int
    #: Scenario code the demo bank applies under (``None``: nobody applies).
    scenario: str | None
    buyer: str | None


SCENARIOS: tuple[DemoScenario, ...] = (
    DemoScenario(
        "inclusive-finance-sme-credit", "普惠金融·小微企业信贷",
        "Inclusive finance: SME credit",
        "试点银行在企业授权下查询其登记、纳税、社保、公积金、水电、涉诉和科技创新等公共数据，"
        "用于小微企业信贷的贷前审查和贷后管理。",
        ("market_supervision", "tax", "hrss", "housing_fund", "utilities", "court", "science",
         "natural_resources", "housing_construction"),
        ("internal_risk_control",), approve=True),
    DemoScenario(
        "enterprise-environmental-credit", "企业环境信用评价", "Enterprise environmental credit",
        "结合环境行政处罚、企业登记、用地和水电使用情况，评价企业环境信用，"
        "支持绿色金融和差异化监管研究。",
        ("environment", "market_supervision", "natural_resources", "utilities"),
        ("research", "public_welfare"), approve=False),
)

PRODUCTS: tuple[DemoProduct, ...] = (
    DemoProduct(
        "inclusive-finance-sme-credit-lookup", "普惠金融·小微企业信贷数据产品",
        "Inclusive finance: SME credit data product",
        "登记 + 纳税 + 社保 + 公积金 + 水电：沙箱内统计分析，并经企业授权逐户查询，支持授信审批。",
        ("market_supervision", "tax", "hrss", "housing_fund", "utilities"),
        access="both", purpose="internal_risk_control", duration_months=12,
        query_quota=1000, scenario="inclusive-finance-sme-credit", buyer="buyer_ccb"),
)

STATEMENT = "普惠金融小微企业授信审查：经企业授权查询其登记、纳税、社保、公积金和水电信息。"


def _user(org: Organization | None) -> Actor | None:
    if org is None:
        return None
    user = db.session.scalar(
        sa.select(User).where(User.organization_id == org.id).order_by(User.id).limit(1)
    )
    return Actor.from_user(user) if user is not None else None


def _dataset_ids(orgs: dict[str, Organization], keys: tuple[str, ...]) -> list[int] | None:
    ids = []
    for key in keys:
        org = orgs.get(key)
        found = org and db.session.scalar(
            sa.select(Dataset.id)
            .where(Dataset.department_id == org.id, Dataset.status == VersionStatus.listed.value)
            .order_by(Dataset.id.desc()).limit(1)
        )
        if not found:
            return None
        ids.append(found)
    return ids


def _scenario(spec: DemoScenario, orgs, operator: Actor, regulator: Actor) -> str:
    scenario = db.session.scalar(sa.select(Scenario).where(Scenario.code == spec.code))
    if scenario is None:
        ids = _dataset_ids(orgs, spec.departments)
        if ids is None:
            return f"scenario {spec.code}: skipped (its datasets are not listed)"
        scenario = services.create_scenario(
            db.session, operator, code=spec.code, title=spec.title, title_en=spec.title_en,
            description=spec.description, dataset_ids=ids, purposes=spec.purposes)
    if scenario.status == ScenarioStatus.draft:
        services.submit_scenario(db.session, operator, scenario.id)
    if spec.approve and scenario.status == ScenarioStatus.pending:
        services.decide_scenario(db.session, regulator, scenario.id, "approve",
                                 "符合公共数据授权运营场景要求 (demo)")
    db.session.commit()
    return f"scenario {spec.title}: {scenario.status}"


def _product(spec: DemoProduct, orgs, operator: Actor) -> tuple[str, DataProduct | None]:
    product = db.session.scalar(sa.select(DataProduct).where(DataProduct.code == spec.code))
    if product is None:
        ids = _dataset_ids(orgs, spec.departments)
        if ids is None:
            return f"product {spec.code}: skipped (its datasets are not listed)", None
        product = services.create_product(
            db.session, operator, code=spec.code, title=spec.title, title_en=spec.title_en,
            description=spec.description, access=spec.access, purpose=spec.purpose,
            duration_months=spec.duration_months, query_quota=spec.query_quota,
            items=[services.ItemSpec(i) for i in ids])
    if product.status == ProductStatus.draft:
        services.set_product_status(db.session, operator, product.id, "publish")
    db.session.commit()
    price = services.product_price_or_none(db.session, product)
    return f"product {spec.title}: {product.status}, price {price} fen", product


def _license(spec: DemoProduct, product: DataProduct, orgs, operator: Actor) -> str:
    from licenses.models import License

    buyer = _user(orgs.get(spec.buyer or ""))
    scenario = db.session.scalar(sa.select(Scenario).where(Scenario.code == spec.scenario))
    if buyer is None or scenario is None or scenario.status != ScenarioStatus.approved:
        return f"product {spec.code}: no demo application"
    lic = db.session.scalar(
        sa.select(License).where(License.product_id == product.id,
                                 License.buyer_org_id == buyer.org_id,
                                 License.status == LicenseStatus.ACTIVE.value)
    )
    if lic is not None:
        return f"product {spec.code}: license {lic.id} (existing, active)"
    lic = services.apply_for_product(db.session, buyer, product_id=product.id,
                                     scenario_id=scenario.id, purpose_statement=STATEMENT)
    if lic.status == LicenseStatus.PENDING_REVIEW:
        licenses.review_license(db.session, operator, lic.id, decision="approve",
                                comment="demo")
    if lic.status == LicenseStatus.AWAITING_PAYMENT:
        config = current_app.config
        payment, _provided, _created = payments.create_payment(
            db.session, buyer, lic.id, "invoice", config=config)
        payments.settle_invoice(db.session, operator, payment.id, f"DEMO-P{payment.id:06d}",
                                config=config)
    db.session.commit()
    db.session.refresh(lic)
    return f"product {spec.code}: license {lic.id} (new, {lic.status})"


def seed_scenario_demo(demo: Any, report: Any) -> None:
    """Publishing the pilot's scenarios and the 普惠金融 data product"""
    orgs = report.orgs
    operator, regulator = _user(orgs.get("operator")), _user(orgs.get("regulator"))
    if operator is None or regulator is None:
        report.notes.append("scenarios: skipped (no demo operator or regulator)")
        return
    for spec in SCENARIOS:
        report.notes.append(_scenario(spec, orgs, operator, regulator))
    for spec in PRODUCTS:
        note, product = _product(spec, orgs, operator)
        report.notes.append(note)
        if product is not None and product.status == ProductStatus.published and spec.buyer:
            report.notes.append(_license(spec, product, orgs, operator))
