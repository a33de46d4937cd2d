"""The public signed license status list and the registration certificates (数据资产登记):
issued when a version is listed (audited), served to anyone once listed, as JSON and PDF, and
verifiable offline; the documented snippets (docs/license-verification.md) are run as written."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from market import crypto
from market.audit.models import AuditEvent
from market.extensions import db
from tests.licenses_app.conftest import active_license

DOC = Path(__file__).resolve().parents[2] / "docs" / "license-verification.md"


def _snippet(name: str):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    code = next(b for b in blocks if f"def {name}" in b)
    imports = re.findall(r"^(?:import|from) (\w+)", code, flags=re.M)
    assert set(imports) <= {"base64", "json", "cryptography"}  # only cryptography + stdlib
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 (our own documentation)
    return namespace[name]


def _one_byte_changes(document: dict, path: tuple) -> list[dict]:
    """Copies of ``document`` with one byte of the string at ``path`` changed."""
    out = []
    target = document
    for key in path[:-1]:
        target = target[key]
    value = target[path[-1]]
    for i in (0, len(value) // 2, len(value) - 1):
        changed = json.loads(json.dumps(document))
        t = changed
        for key in path[:-1]:
            t = t[key]
        ch = value[i]
        t[path[-1]] = value[:i] + ("A" if ch != "A" else "B") + value[i + 1 :]
        out.append(changed)
    return out


def _signature_byte_flips(document: dict) -> list[dict]:
    """Copies of ``document`` whose signature differs in one byte (of the decoded 64 bytes:
    the base64 text's last character also carries unused padding bits)."""
    raw = crypto.unb64(document["signature"])
    out = []
    for i in (0, 31, 63):
        changed = json.loads(json.dumps(document))
        changed["signature"] = crypto.b64(raw[:i] + bytes([raw[i] ^ 0x01]) + raw[i + 1 :])
        out.append(changed)
    return out


# ------------------------------------------------------------------------ status list


def test_status_list_is_public_signed_and_current(client, market):
    lic = active_license(client, market)
    r = client.get("/api/v1/licenses/status")
    assert r.status_code == 200
    body = r.get_json()
    assert set(body) == {"issued_at", "licenses", "signature", "public_key_id"}
    assert {"id": lic["id"], "status": "active"} in body["licenses"]
    # Ids and statuses only: nothing about the buyer, the price or the purpose.
    assert all(set(e) == {"id", "status"} for e in body["licenses"])
    keys = client.get("/api/v1/keys").get_json()
    status_of = _snippet("license_status")
    assert status_of(body, keys, lic["id"]) == "active"

    client.post(f"/api/v1/licenses/{lic['id']}/suspend", headers=market.regulator.headers,
                json={"reason": "核查"})
    later = client.get("/api/v1/licenses/status").get_json()
    assert status_of(later, keys, lic["id"]) == "suspended"


def test_status_list_fails_after_a_one_byte_change(client, market):
    lic = active_license(client, market)
    body = client.get("/api/v1/licenses/status").get_json()
    keys = client.get("/api/v1/keys").get_json()
    status_of = _snippet("license_status")
    assert status_of(body, keys, lic["id"]) == "active"
    for changed in _one_byte_changes(body, ("issued_at",)):
        assert status_of(changed, keys, lic["id"]) is None
    forged = json.loads(json.dumps(body))
    entry = next(e for e in forged["licenses"] if e["id"] == lic["id"])
    entry["status"] = "activf"
    assert status_of(forged, keys, lic["id"]) is None
    for changed in _signature_byte_flips(body):
        assert status_of(changed, keys, lic["id"]) is None


# ------------------------------------------------------------------------ certificates


@pytest.fixture
def listed(client, published, operator):
    """A dataset uploaded, processed and listed by the operator: (dataset id, response)."""

    def make(**meta):
        dataset_id = published(**meta)
        r = client.post(f"/api/v1/datasets/{dataset_id}/review", headers=operator[1],
                        json={"decision": "approve"})
        assert r.status_code == 200, r.get_json()
        return dataset_id

    return make


def test_listing_issues_an_audited_certificate(client, listed, data_dir):
    dataset_id = listed(security_level="important")
    r = client.get(f"/api/v1/datasets/{dataset_id}/certificate")
    assert r.status_code == 200 and r.mimetype == "application/json"
    doc = r.get_json()
    cert = doc["certificate"]
    assert re.fullmatch(r"SHDR-\d{4}-\d{6}", cert["number"])
    assert cert["security_level"] == "important" and cert["open_grade"] == "conditional"
    assert isinstance(cert["quality"], int) and cert["department"]
    assert cert["issued_at"].endswith("Z")

    from market.datasets.models import Dataset

    version = db.session.get(Dataset, dataset_id).current_version
    stored = data_dir / version.parquet_path
    assert cert["sha256"] == hashlib.sha256(stored.read_bytes()).hexdigest()
    event = db.session.scalar(
        sa.select(AuditEvent).where(AuditEvent.type == "dataset.registered")
    )
    assert event is not None and event.subject_type == "registration_certificate"
    assert event.data["number"] == cert["number"] and event.data["dataset_id"] == dataset_id


def test_certificate_verifies_offline_and_fails_after_a_one_byte_change(client, listed):
    dataset_id = listed()
    doc = client.get(f"/api/v1/datasets/{dataset_id}/certificate").get_json()
    keys = client.get("/api/v1/keys").get_json()
    verify = _snippet("verify_certificate")
    assert verify(doc, keys) is True
    for field in ("number", "sha256", "department", "issued_at"):
        for changed in _one_byte_changes(doc, ("certificate", field)):
            assert verify(changed, keys) is False, field
    raised = json.loads(json.dumps(doc))
    raised["certificate"]["quality"] = doc["certificate"]["quality"] + 1
    assert verify(raised, keys) is False
    for changed in _signature_byte_flips(doc):
        assert verify(changed, keys) is False
    # The platform's own verifier agrees.
    public = {k["id"]: crypto.load_public_key(k["public_key"]) for k in keys["keys"]}
    assert crypto.verify(public[doc["public_key_id"]], doc["certificate"], doc["signature"])


def test_certificate_pdf(client, listed):
    dataset_id = listed()
    r = client.get(f"/api/v1/datasets/{dataset_id}/certificate?format=pdf")
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    assert r.data.startswith(b"%PDF-") and b"STSong-Light" in r.data
    assert "attachment" in r.headers["Content-Disposition"]
    assert client.get(f"/api/v1/datasets/{dataset_id}/certificate?format=doc").status_code == 422


def test_the_dataset_page_links_the_certificate(client, listed):
    dataset_id = listed()
    page = client.get(f"/datasets/{dataset_id}").get_data(as_text=True)
    assert f"/api/v1/datasets/{dataset_id}/certificate?format=pdf" in page


def test_no_certificate_before_listing(client, published, department):
    dataset_id = published()
    assert client.get(f"/api/v1/datasets/{dataset_id}/certificate").status_code == 404
    assert client.get(f"/api/v1/datasets/{dataset_id}/certificate",
                      headers=department[1]).status_code == 404
    assert client.get("/api/v1/datasets/999999/certificate").status_code == 404


def test_a_new_version_gets_a_new_number(client, listed, department, operator, upload):
    from tests.datasets.conftest import csv_bytes, multipart, sample_rows

    dataset_id = listed()
    first = client.get(f"/api/v1/datasets/{dataset_id}/certificate").get_json()["certificate"]
    body, ctype = multipart([("file", (csv_bytes(sample_rows(80)), "v2.csv"))])
    r = client.post(f"/api/v1/datasets/{dataset_id}/versions", data=body, content_type=ctype,
                    headers=department[1])
    assert r.status_code == 202, r.get_json()
    r = client.post(f"/api/v1/datasets/{dataset_id}/review", headers=operator[1],
                    json={"decision": "approve"})
    assert r.status_code == 200, r.get_json()
    second = client.get(f"/api/v1/datasets/{dataset_id}/certificate").get_json()["certificate"]
    assert second["version"] == 2 and second["number"] != first["number"]
    assert second["sha256"] != first["sha256"]


def test_theme_scheme_is_served(client):
    r = client.get("/api/v1/catalog/themes.jsonld")
    assert r.status_code == 200
    doc = json.loads(r.get_data(as_text=True))
    scheme = doc["@graph"][0]
    assert scheme["@type"] == "skos:ConceptScheme"
    assert any(c.get("skos:notation") == "tax" for c in doc["@graph"][1:])
