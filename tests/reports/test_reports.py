"""The monthly regulator report (监管报送): what it counts, who reads it, the signed audit head
it carries, offline verification (the documented snippet, run as written) and its CSV and PDF."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from market.audit.services import verify_signed_head
from market.crypto import b64, unb64
from market.extensions import db
from market.keys import public_keys
from market.quotes.revenue import current_period
from tests.licenses_app.conftest import active_license
from tests.pdftext import pdf_text

DOC = Path(__file__).resolve().parents[2] / "docs" / "license-verification.md"


def _snippet(name: str):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    code = next(b for b in blocks if f"def {name}" in b)
    modules = set()
    for line in re.findall(r"^(?:import|from) ([\w., ]+)", code, flags=re.M):
        modules |= {m.strip().split(".")[0] for m in line.split(",")}
    assert modules <= {"base64", "json", "cryptography"}  # only cryptography + stdlib
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 (our own documentation)
    return namespace[name]


@pytest.fixture
def month(client, market):
    """A month with one settled license, two sandbox queries (one refused), a suspension."""
    from sandbox.models import SandboxQuery

    lic = active_license(client, market, amount=200_000)
    buyer_org = market.buyer.org.id
    for status, rule, elapsed, eps in (("ok", None, 120, Decimal("0.5")),
                                       ("refused", "not_aggregated", None, Decimal(0)),
                                       ("ok", None, 80, Decimal("0.25"))):
        db.session.add(SandboxQuery(
            license_id=lic["id"], buyer_org_id=buyer_org, sql_text="SELECT 1", sql_hash="0" * 64,
            status=status, rule=rule, elapsed_ms=elapsed, epsilon_spent=eps,
        ))
    db.session.commit()
    r = client.post(f"/api/v1/licenses/{lic['id']}/suspend", json={"reason": "report test"},
                    headers=market.regulator.headers)
    assert r.status_code == 200, r.get_json()
    return lic


def test_the_report_counts_the_month_and_verifies_offline(client, market, month):
    period = current_period()
    r = client.get(f"/api/v1/reports/{period}", headers=market.regulator.headers)
    assert r.status_code == 200, r.get_json()
    signed = r.get_json()
    report = signed["report"]
    assert report["period"] == period and report["complete"] is False

    lic = report["licenses"]
    assert lic["granted"] == 1
    assert [c["category"] for c in lic["by_category"]] == ["enterprise"]
    assert lic["by_category"][0]["amount_fen"] == 200_000
    assert len(lic["by_department"]) == 1 and lic["by_department"][0]["licenses"] == 1

    money = report["revenue"]
    assert money["total_fen"] == 200_000
    dept_rows = [r for r in money["rows"] if r["party"].startswith("department:")]
    assert dept_rows and all(r["department"] for r in dept_rows)  # named, not just an id
    # The test department's default agreement: 90 % to the department.
    assert money["departments_fen"] == 180_000 and money["operator_fen"] == 20_000
    assert report["kpis"]["revenue_returned_to_departments_bps"] == 9000

    q = report["queries"]
    assert q["total"] == 3 and q["refusals_by_rule"] == {"not_aggregated": 1}
    (spent,) = q["privacy_budget_by_buyer"]
    assert spent["buyer_id"] == market.buyer.org.id and spent["epsilon_spent"] == "0.7500"
    assert report["kpis"]["sandbox_query_p95_ms"] == 120
    assert report["kpis"]["http_p95_ms"] is None
    assert report["kpis"]["buyers_served"] == 1
    # The fixture inserts its dataset directly, without the audited review that lists a
    # dataset: the listing history (the audit log) does not see it. The KPI is tested on
    # real listings in test_listing_history.py.
    assert report["kpis"]["datasets_listed"] == 0

    gov = report["governance"]
    assert gov["counts"]["license.suspended"] == 1
    assert any(e["type"] == "license.suspended" and e["subject_id"] == str(month["id"])
               for e in gov["events"])

    head = report["audit_head"]
    assert verify_signed_head(head, public_keys())
    assert all(e["seq"] <= head["seq"] for e in gov["events"])

    keys = client.get("/api/v1/keys").get_json()
    verify_report = _snippet("verify_report")
    assert verify_report(signed, keys) is True
    text = json.dumps(signed, ensure_ascii=False)
    # One changed byte of the report: a count, an amount, the head's hash.
    for old, new in (('"granted": 1', '"granted": 2'),
                     ('"total_fen": 200000', '"total_fen": 200001'),
                     (head["hash"], ("0" if head["hash"][0] != "0" else "1") + head["hash"][1:])):
        assert old in text
        assert verify_report(json.loads(text.replace(old, new, 1)), keys) is False
    raw = unb64(signed["signature"])
    for i in (0, 31, 63):
        changed = dict(signed, signature=b64(raw[:i] + bytes([raw[i] ^ 0x80]) + raw[i + 1:]))
        assert verify_report(changed, keys) is False


def test_csv_and_pdf(client, market, month):
    period = current_period()
    r = client.get(f"/api/v1/reports/{period}?format=csv", headers=market.operator.headers)
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True))))
    assert rows[0] == ["section", "key", "value"]
    as_dict = {(s, k): v for s, k, v in rows[1:]}
    assert as_dict[("licenses", "granted")] == "1"
    assert as_dict[("queries", "refusals_by_rule.not_aggregated")] == "1"
    assert ("signature", "ed25519") in as_dict
    # The file carries its signed JSON, which verifies offline on its own.
    embedded = json.loads(as_dict[("signature", "signed_json")])
    keys = client.get("/api/v1/keys").get_json()
    assert _snippet("verify_report")(embedded, keys) is True
    assert embedded["signature"] == as_dict[("signature", "ed25519")]

    r = client.get(f"/api/v1/reports/{period}?format=pdf", headers=market.regulator.headers)
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    assert r.data.startswith(b"%PDF") and len(r.data) > 1000
    subject = re.search(rb"/Subject \(market-signed-report:([A-Za-z0-9+/=]+)\)", r.data)
    from_pdf = json.loads(base64.b64decode(subject.group(1)))
    assert _snippet("verify_report")(from_pdf, keys) is True
    text = pdf_text(r.data).replace("\n", "")
    assert from_pdf["signature"] in text and from_pdf["public_key_id"] in text


def test_roles(client, market, as_role):
    period = current_period()
    assert client.get(f"/api/v1/reports/{period}").status_code == 401
    for kind in ("buyer", "department", "subject"):
        assert client.get(f"/api/v1/reports/{period}",
                          headers=as_role(kind)[1]).status_code == 403
    assert client.get(f"/api/v1/reports/{period}",
                      headers=market.operator.headers).status_code == 200


@pytest.mark.parametrize("period", ["2026-13", "2026-1", "abcd-ef", "2999-01"])
def test_bad_or_future_period(client, market, period):
    r = client.get(f"/api/v1/reports/{period}", headers=market.regulator.headers)
    assert r.status_code == 422
    assert "period" in r.get_json()["errors"]


def test_an_empty_month(client, market):
    r = client.get("/api/v1/reports/2020-01", headers=market.regulator.headers)
    report = r.get_json()["report"]
    assert report["complete"] is True
    assert report["licenses"]["granted"] == 0 and report["revenue"]["total_fen"] == 0
    assert report["kpis"]["revenue_returned_to_departments_bps"] is None
    assert report["kpis"]["sandbox_query_p95_ms"] is None
