"""Authorization agreements (授权运营协议): propose, sign, countersign; role and object checks;
the signed bundle verifies offline (the documented snippet, run as written) and fails after a
one-byte change; the client-side signing path with a registered key."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from market.agreements import document as doc
from market.audit.models import AuditEvent
from market.crypto import b64, private_key_to_b64, unb64
from market.extensions import db

DOC = Path(__file__).resolve().parents[2] / "docs" / "license-verification.md"
ROOT = Path(__file__).resolve().parents[2]


def _snippet(name: str):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    code = next(b for b in blocks if f"def {name}" in b)
    modules = set()
    for line in re.findall(r"^(?:import|from) ([\w., ]+)", code, flags=re.M):
        modules |= {m.strip().split(".")[0] for m in line.split(",")}
    assert modules <= {"base64", "hashlib", "json", "cryptography"}  # only cryptography + stdlib
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 (our own documentation)
    return namespace[name]


def _terms(**over):
    now = dt.datetime.now(dt.UTC)
    body = {
        "categories": ["enterprise_registry"],
        "starts_at": (now - dt.timedelta(days=1)).isoformat(),
        "ends_at": (now + dt.timedelta(days=365)).isoformat(),
        "revenue_share_bps": 8500,
    }
    body.update(over)
    return body


def _events(agreement_id: int) -> list[str]:
    return list(
        db.session.scalars(
            sa.select(AuditEvent.type)
            .where(AuditEvent.subject_type == "agreement",
                   AuditEvent.subject_id == str(agreement_id))
            .order_by(AuditEvent.seq)
        )
    )


def _one_byte_changes(text: str) -> list[str]:
    out = []
    for i in (0, len(text) // 2, len(text) - 1):
        ch = text[i]
        out.append(text[:i] + ("A" if ch != "A" else "B") + text[i + 1:])
    return out


def test_propose_countersign_and_verify_offline(client, department, operator, as_role):
    r = client.post("/api/v1/agreements", json=_terms(), headers=department[1])
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["status"] == "proposed" and body["key_origin"] == "custodial"
    assert body["revenue_share"] == {"department_bps": 8500, "operator_bps": 1500}
    assert body["signatures"]["department"]["key_id"] and body["signatures"]["operator"] is None
    agreement_id = body["id"]

    r = client.post(f"/api/v1/agreements/{agreement_id}/countersign", headers=operator[1])
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["status"] == "active"
    assert _events(agreement_id) == [
        "agreement.drafted", "agreement.proposed", "agreement.countersigned"
    ]

    regulator = as_role("regulator")
    r = client.get(f"/api/v1/agreements/{agreement_id}/document", headers=regulator[1])
    assert r.status_code == 200
    assert "attachment" in r.headers["Content-Disposition"]
    bundle = json.loads(r.get_data(as_text=True))
    keys = client.get("/api/v1/keys").get_json()
    verify_agreement = _snippet("verify_agreement")
    assert verify_agreement(bundle, keys) is True
    assert bundle["document"]["revenue_share"]["department_bps"] == 8500

    # One changed byte anywhere — in the signed terms or in either signature — fails.
    text = json.dumps(bundle, ensure_ascii=False)
    rate = json.loads(text.replace('"department_bps": 8500', '"department_bps": 8501'))
    assert verify_agreement(rate, keys) is False
    for changed in _one_byte_changes(bundle["document"]["number"]):
        copy = json.loads(text)
        copy["document"]["number"] = changed
        assert verify_agreement(copy, keys) is False
    # A signature with one byte changed (a byte of the signature, not of its base64 text: the
    # last base64 character carries padding bits a decoder ignores).
    for who in ("department_signature", "operator_signature"):
        raw = unb64(bundle[who]["signature"])
        for i in (0, len(raw) // 2, len(raw) - 1):
            copy = json.loads(text)
            copy[who]["signature"] = b64(raw[:i] + bytes([raw[i] ^ 0x01]) + raw[i + 1:])
            assert verify_agreement(copy, keys) is False, who
    # A key id that does not belong to the public key given is refused too.
    copy = json.loads(text)
    copy["department_signature"]["key_id"] = "0" * 16
    assert verify_agreement(copy, keys) is False
    # The pure helper agrees with the snippet.
    from market.keys import public_keys

    assert doc.verify_bundle(bundle, public_keys()).ok
    assert not doc.verify_bundle(rate, public_keys()).ok


@pytest.mark.parametrize(
    "over, field",
    [
        ({"categories": [], "dataset_ids": []}, "scope"),
        ({"revenue_share_bps": 10_001}, "revenue_share_bps"),
        ({"revenue_share_bps": -1}, "revenue_share_bps"),
        ({"revenue_share_bps": 12.5}, "revenue_share_bps"),
        ({"ends_at": "2020-01-01T00:00:00+00:00", "starts_at": "2019-01-01T00:00:00+00:00"},
         "ends_at"),
        ({"ends_at": "2026-01-01T00:00:00+00:00", "starts_at": "2027-01-01T00:00:00+00:00"},
         "ends_at"),
        ({"dataset_ids": [999_999]}, "dataset_ids"),
    ],
)
def test_invalid_terms_are_refused(client, department, over, field):
    r = client.post("/api/v1/agreements", json=_terms(**over), headers=department[1])
    assert r.status_code == 422, r.get_json()
    assert field in r.get_json()["errors"] or field in json.dumps(r.get_json()["errors"])


def test_a_department_cannot_authorize_another_departments_dataset(
    client, department, as_role, make_org
):
    from market.datasets.models import Dataset

    other = make_org("department")
    dataset = Dataset(slug="d_other_x", department_id=other.id, title="x", category="tax",
                      open_grade="open", status="listed")
    db.session.add(dataset)
    db.session.commit()
    r = client.post("/api/v1/agreements", json=_terms(dataset_ids=[dataset.id]),
                    headers=department[1])
    assert r.status_code == 422
    assert "dataset_ids" in r.get_json()["errors"]


def test_roles_and_objects(client, department, operator, as_role):
    agreement_id = client.post(
        "/api/v1/agreements", json=_terms(), headers=department[1]
    ).get_json()["id"]
    buyer = as_role("buyer")
    regulator = as_role("regulator")
    stranger = as_role("department")
    # Only a department proposes.
    for who in (buyer, operator, regulator):
        assert client.post("/api/v1/agreements", json=_terms(), headers=who[1]).status_code == 403
    # Another department may not learn the agreement exists.
    for path in (f"/api/v1/agreements/{agreement_id}",
                 f"/api/v1/agreements/{agreement_id}/document"):
        assert client.get(path, headers=stranger[1]).status_code == 404
        assert client.get(path, headers=buyer[1]).status_code == 404
        assert client.get(path, headers=regulator[1]).status_code == 200
        assert client.get(path).status_code == 401
    listed = client.get("/api/v1/agreements", headers=stranger[1]).get_json()
    assert agreement_id not in [a["id"] for a in listed["items"]]
    assert client.get("/api/v1/agreements", headers=buyer[1]).status_code == 403
    # Only the operator countersigns or declines.
    for who in (department, stranger, regulator, buyer):
        assert client.post(f"/api/v1/agreements/{agreement_id}/countersign",
                           headers=who[1]).status_code == 403
        assert client.post(f"/api/v1/agreements/{agreement_id}/decline", json={"reason": "x"},
                           headers=who[1]).status_code == 403
    r = client.post(f"/api/v1/agreements/{agreement_id}/decline", json={"reason": "scope"},
                    headers=operator[1])
    assert r.status_code == 200 and r.get_json()["status"] == "declined"
    r = client.post(f"/api/v1/agreements/{agreement_id}/countersign", headers=operator[1])
    assert r.status_code == 409
    assert _events(agreement_id)[-1] == "agreement.declined"


def test_registered_key_client_side_signature(client, department, operator, tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    public = doc.public_key_b64(key.public_key())
    r = client.post("/api/v1/agreements/keys", json={"public_key": public},
                    headers=department[1])
    assert r.status_code == 201, r.get_json()
    kid = r.get_json()["key_id"]
    assert client.post("/api/v1/agreements/keys", json={"public_key": public},
                       headers=department[1]).status_code == 409
    assert client.post("/api/v1/agreements/keys", json={"public_key": "bm90LWEta2V5"},
                       headers=department[1]).status_code == 422

    draft = client.post("/api/v1/agreements", json=_terms(signing="registered"),
                        headers=department[1]).get_json()
    assert draft["status"] == "draft"
    # Not signed yet: the operator cannot countersign a draft.
    assert client.post(f"/api/v1/agreements/{draft['id']}/countersign",
                       headers=operator[1]).status_code == 409

    # The department signs on its own machine with the CLI helper.
    seed = tmp_path / "seed.txt"
    seed.write_text(private_key_to_b64(key))
    draft_file = tmp_path / "draft.json"
    draft_file.write_text(json.dumps(draft, ensure_ascii=False), encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "market.agreements.document", "sign", "--key", str(seed),
         "--document", str(draft_file)],
        capture_output=True, text=True, check=True, cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    signed = json.loads(out.stdout)
    assert signed["key_id"] == kid

    # A signature by another key, or of other bytes, is refused.
    other = doc.sign_document(Ed25519PrivateKey.generate(), draft["document"])
    r = client.post(f"/api/v1/agreements/{draft['id']}/sign",
                    json={"key_id": kid, "signature": other}, headers=department[1])
    assert r.status_code == 422 and "signature" in r.get_json()["errors"]
    r = client.post(f"/api/v1/agreements/{draft['id']}/sign",
                    json={"key_id": "f" * 16, "signature": signed["signature"]},
                    headers=department[1])
    assert r.status_code == 422 and "key_id" in r.get_json()["errors"]

    r = client.post(f"/api/v1/agreements/{draft['id']}/sign",
                    json={"key_id": kid, "signature": signed["signature"]},
                    headers=department[1])
    assert r.status_code == 200 and r.get_json()["status"] == "proposed"
    r = client.post(f"/api/v1/agreements/{draft['id']}/countersign", headers=operator[1])
    assert r.get_json()["status"] == "active"
    bundle = json.loads(client.get(f"/api/v1/agreements/{draft['id']}/document",
                                   headers=department[1]).get_data(as_text=True))
    assert bundle["key_origin"] == "registered"
    assert bundle["department_signature"]["key_id"] == kid
    assert _snippet("verify_agreement")(bundle, client.get("/api/v1/keys").get_json())

    # The command-line verifier agrees.
    bundle_file = tmp_path / "bundle.json"
    bundle_file.write_text(json.dumps(bundle, ensure_ascii=False), encoding="utf-8")
    platform_key = client.get("/api/v1/keys").get_json()["keys"][0]["public_key"]
    ok = subprocess.run(
        [sys.executable, "-m", "market.agreements.document", "verify", "--bundle",
         str(bundle_file), "--operator-key", platform_key],
        capture_output=True, text=True, cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bundle["document"]["scope"]["categories"] = ["tax"]
    bundle_file.write_text(json.dumps(bundle, ensure_ascii=False), encoding="utf-8")
    bad = subprocess.run(
        [sys.executable, "-m", "market.agreements.document", "verify", "--bundle",
         str(bundle_file), "--operator-key", platform_key],
        capture_output=True, text=True, cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert bad.returncode == 1 and json.loads(bad.stdout)["ok"] is False


def test_a_department_cannot_sign_another_departments_draft(client, department, as_role):
    draft = client.post("/api/v1/agreements", json=_terms(signing="registered"),
                        headers=department[1]).get_json()
    stranger = as_role("department")
    r = client.post(f"/api/v1/agreements/{draft['id']}/sign",
                    json={"key_id": "a" * 16, "signature": "x"}, headers=stranger[1])
    assert r.status_code == 404
