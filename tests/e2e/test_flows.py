"""The marketplace's flows over HTTP, against gunicorn, as its users drive them.

Each test is one flow from start to end on the shared server; they do not depend on each
other's order (each makes what it needs), so they can run on any xdist worker.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import time

import pytest
import requests
import stripe
from faker import Faker

from market.idcodes import is_valid_resident_id
from tests.conftest import valid_uscc
from tests.e2e import harness
from tests.e2e.conftest import Api, month


def wait_for(fetch, predicate, timeout: float = 30.0, what: str = "condition"):
    """Poll ``fetch()`` until ``predicate(value)``; the last value is in the failure."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if predicate(value):
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}: {str(value)[:800]}")
        time.sleep(0.3)


def csv_rows(r: requests.Response) -> list[list[str]]:
    assert r.status_code == 200, r.text[:500]
    return list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))


# ------------------------------------------------------------------------------ publishing


def faker_csv(n: int = 80) -> tuple[bytes, dict[str, list[str]]]:
    """Enterprise rows with Faker-made personal data (zh_CN), and the raw PII values."""
    fake = Faker("zh_CN")
    Faker.seed(20261207)
    header = ["统一社会信用代码", "企业名称", "法定代表人", "法定代表人身份证号", "联系电话",
              "所属区", "注册资本(万元)"]
    pii: dict[str, list[str]] = {"法定代表人": [], "法定代表人身份证号": [], "联系电话": []}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for i in range(n):
        rid = fake.ssn(min_age=25, max_age=70)
        assert is_valid_resident_id(rid), rid
        name, phone = fake.name(), fake.phone_number()
        pii["法定代表人"].append(name)
        pii["法定代表人身份证号"].append(rid)
        pii["联系电话"].append(phone)
        writer.writerow([valid_uscc(700_000 + i), fake.company(), name, rid, phone,
                         ["浦东新区", "徐汇区", "静安区", "黄浦区"][i % 4], 100 + (i * 37) % 900])
    return out.getvalue().encode("utf-8"), pii


def publish(live, department: Api, content: bytes, **meta) -> dict:
    metadata = {
        "title": f"企业联系人信息 e2e {time.monotonic_ns()}",
        "description": "端到端测试数据（Faker 生成）",
        "category": "enterprise_registry",
        "open_grade": "conditional",
        "confidential": False,
        "entity_key": "统一社会信用代码",
        "update_frequency": "monthly",
        "costs": {"collection": 100_000, "processing": 50_000, "storage_monthly": 1_000},
        **meta,
    }
    created = department.ok(
        "POST", "/api/v1/datasets", status=202,
        files={"file": ("contacts.csv", content, "text/csv")},
        data={"metadata": json.dumps(metadata, ensure_ascii=False)},
    )
    return wait_for(
        lambda: department.ok("GET", f"/api/v1/datasets/{created['id']}"),
        lambda d: d["status"] != "processing", what="the upload to be processed",
    )


def test_publish_review_with_pii_desensitized(live):
    department, operator = live.api("department"), live.api("operator")
    content, pii = faker_csv()
    dataset = publish(live, department, content)
    assert dataset["status"] == "pending_review", dataset
    kinds = {c["name"]: (c["pii_kind"], c["treatment"]) for c in dataset["columns"]}
    assert kinds["法定代表人身份证号"][0] == "resident_id"
    assert kinds["联系电话"][0] == "mobile"
    for column in pii:
        assert kinds[column][1] != "none", (column, kinds[column])
    # Not listed yet: invisible to a bank and to anonymous callers.
    assert live.api("buyer").get(f"/api/v1/datasets/{dataset['id']}").status_code in (403, 404)
    reviewed = operator.ok("POST", f"/api/v1/datasets/{dataset['id']}/review",
                           json={"decision": "approve", "comment": "e2e"})
    assert reviewed["status"] == "listed"
    public = live.anonymous().ok("GET", f"/api/v1/datasets/{dataset['id']}")
    preview = live.anonymous().ok("GET", f"/api/v1/datasets/{dataset['id']}/preview")
    text = json.dumps([public, preview], ensure_ascii=False)
    for column, values in pii.items():
        for value in values:
            assert value not in text, f"raw {column} value in the public view"


# ------------------------------------------------------------- quote, license, pay, settle


def open_dataset(live) -> dict:
    listed = live.anonymous().ok("GET", "/api/v1/datasets", params={"per_page": 100})["items"]
    opens = [d for d in listed if d.get("open_grade") == "open"]
    assert opens, [d.get("open_grade") for d in listed]
    return opens[0]


def buy(live, role: str, dataset_id: int, *, quota: int = 50, months: int = 12) -> dict:
    buyer = live.api(role)
    quote = buyer.ok("POST", "/api/v1/quotes", json={
        "items": [{"dataset_id": dataset_id, "columns": None}],
        "duration_months": months, "purpose": "internal_risk_control", "query_quota": quota,
    })
    assert quote["total"] > 0 and quote["signature"]
    lic = buyer.ok("POST", "/api/v1/licenses",
                   json={"quote_id": quote["id"], "purpose_statement": "中小企业授信风险评估"})
    if lic["status"] == "pending_review":
        lic = live.api("operator").ok("POST", f"/api/v1/licenses/{lic['id']}/review",
                                      json={"decision": "approve", "comment": "e2e"})
    assert lic["status"] == "awaiting_payment", lic
    assert lic["price"]["total"] == quote["total"]
    return lic


def test_invoice_payment_settles_then_revoke_refunds(live):
    buyer, operator = live.api("buyer2"), live.api("operator")
    dataset = open_dataset(live)
    lic = buy(live, "buyer2", dataset["id"])
    pay = buyer.ok("POST", f"/api/v1/licenses/{lic['id']}/payments", json={"provider": "invoice"})
    assert pay["amount"] == lic["price"]["total"] and pay["invoice_number"]
    # Only the operator settles; the buyer cannot mark its own invoice paid.
    assert buyer.post(f"/api/v1/payments/{pay['payment_id']}/settle",
                      json={"bank_reference": "X"}).status_code == 403
    operator.ok("POST", f"/api/v1/payments/{pay['payment_id']}/settle",
                json={"bank_reference": f"ICBC-E2E-{lic['id']}"})
    active = buyer.ok("GET", f"/api/v1/licenses/{lic['id']}")
    assert active["status"] == "active"
    doc = buyer.ok("GET", f"/api/v1/licenses/{lic['id']}/document")
    assert live.anonymous().ok("POST", "/api/v1/licenses/verify",
                               json={"policy": doc["policy"], "signature": doc["signature"]})["valid"]

    revoked = operator.ok("POST", f"/api/v1/licenses/{lic['id']}/revoke",
                          json={"reason": "e2e: revoked by the operator"})
    assert revoked["status"] == "revoked"
    assert buyer.ok("GET", f"/api/v1/licenses/{lic['id']}")["status"] == "revoked"
    r = buyer.post(f"/api/v1/sandbox/{lic['id']}/queries", json={"sql": "SELECT 1"})
    assert r.status_code == 403
    # The refund reached the ledger and the department's statement (read over the wire).
    ledger = operator.ok("GET", "/api/v1/ledger", params={"per_page": 100})
    assert "refund" in json.dumps(ledger)
    rows = csv_rows(operator.get("/api/v1/revenue/statements.csv", params={"period": month()}))
    refunds = [int(r[9]) for r in rows[1:] if r[3] == "refunds"]
    assert sum(refunds) > 0


def test_stripe_payment_intent_and_signed_webhook_activate_then_sandbox(live):
    buyer = live.api("buyer2")
    dataset = open_dataset(live)
    lic = buy(live, "buyer2", dataset["id"], quota=5)
    pay = buyer.ok("POST", f"/api/v1/licenses/{lic['id']}/payments", json={"provider": "stripe"})
    intent_id = pay["client_secret"].split("_secret_")[0]
    # The buyer's browser (Stripe.js) confirms with the test card; localstripe then delivers
    # the signed payment_intent.succeeded webhook to the server by itself.
    http = stripe.RequestsClient(timeout=10)
    try:
        card = stripe.StripeClient(live.stripe.api_key,
                                   base_addresses={"api": live.stripe.base_url},
                                   max_network_retries=0, http_client=http)
        card.v1.payment_intents.update(intent_id, params={"payment_method": "pm_card_visa"})
        card.v1.payment_intents.confirm(intent_id)
    finally:
        http.close()
    wait_for(lambda: buyer.ok("GET", f"/api/v1/licenses/{lic['id']}"),
             lambda lic_: lic_["status"] == "active", what="the webhook to activate the license")
    # An unsigned webhook is refused.
    r = live.anonymous().post("/api/v1/payments/stripe/webhook", data=b"{}",
                              headers={"Content-Type": "application/json"})
    assert r.status_code == 400

    tables = buyer.ok("GET", f"/api/v1/sandbox/{lic['id']}/tables")["items"]
    table = tables[0]
    dims = [c["name"] for c in table["columns"] if c.get("role") == "dimension"]
    sql = (f"SELECT {dims[0]}, COUNT(*) AS n FROM {table['slug']} GROUP BY {dims[0]}" if dims
           else f"SELECT COUNT(*) AS n FROM {table['slug']}")
    answer = buyer.ok("POST", f"/api/v1/sandbox/{lic['id']}/queries", json={"sql": sql})
    assert answer["status"] == "ok" and answer["rows"] and answer["quota_remaining"] == 4
    refused = buyer.post(f"/api/v1/sandbox/{lic['id']}/queries",
                         json={"sql": f"SELECT 1; DELETE FROM {table['slug']}"})
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"]["rule"] == "multiple_statements"
    history = buyer.ok("GET", f"/api/v1/sandbox/{lic['id']}/queries")
    assert history["items"]
    # Another bank cannot read or use this license.
    assert live.api("buyer").get(f"/api/v1/licenses/{lic['id']}").status_code == 404


def test_consented_lookup_and_the_subjects_access_log(live):
    found = re.search(r"consented lookups: license (\d+) .* from \S+ (\w{18}):", live.seed_output)
    assert found, live.seed_output[-1500:]
    license_id, code = int(found[1]), found[2]
    buyer = live.api("buyer")
    answer = buyer.ok("POST", "/api/v1/lookups",
                      json={"license_id": license_id, "subject_credit_code": code})
    assert answer["records"] and answer["quota_remaining"] >= 0
    # Without consent for another enterprise: 403; another bank cannot use the license.
    other = valid_uscc(987_654)
    assert buyer.post("/api/v1/lookups", json={"license_id": license_id,
                                               "subject_credit_code": other}).status_code == 403
    assert live.api("buyer2").post("/api/v1/lookups", json={
        "license_id": license_id, "subject_credit_code": code}).status_code in (403, 404)
    log = live.api("subject").ok("GET", "/api/v1/subjects/me/access-log")
    assert "lookup" in json.dumps(log)


# ---------------------------------------------------------------------------------- audit


def test_audit_verifies_over_http_and_from_the_cli_with_the_signed_head(live):
    regulator = live.api("regulator")
    head = regulator.ok("GET", "/api/v1/audit/head")
    assert set(head) == {"seq", "hash", "signed_at", "signature", "public_key_id"}
    keys = {k["id"]: k for k in live.anonymous().ok("GET", "/api/v1/keys")["keys"]}
    assert head["public_key_id"] in keys
    verified = regulator.ok("GET", "/api/v1/audit/verify")
    assert verified["valid"] is True and verified["events"] >= head["seq"]
    assert live.api("buyer").get("/api/v1/audit/head").status_code == 403
    rows = csv_rows(regulator.get("/api/v1/audit/export.csv"))
    assert [r[8] for r in rows[1:] if r[0] == str(head["seq"])] == [head["hash"]]
    done = subprocess.run(
        [*harness.market_command(), "audit", "verify", "--expect-head",
         f"{head['seq']}:{head['hash']}"],
        env=live.server.env, cwd=harness.ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "OK:" in done.stdout
    # (A head the chain no longer reaches fails: tests/audit/test_head.py, in-process.)
