"""docs/license-verification.md must stay true: its snippet is executed as written, and its
example policy is what build_policy produces."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from licenses.odrl import LicensedAsset, PolicyParty, build_policy, sign_policy
from market import crypto

DOC = Path(__file__).resolve().parents[2] / "docs" / "license-verification.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


@pytest.fixture(scope="module")
def verify_license():
    snippet = next(block for block in _blocks("python") if "def verify_license" in block)
    assert len(snippet.strip().splitlines()) <= 18
    imports = re.findall(r"^(?:import|from) (\w+)", snippet, flags=re.M)
    assert set(imports) <= {"base64", "json", "cryptography"}
    namespace: dict = {}
    exec(compile(snippet, str(DOC), "exec"), namespace)  # noqa: S102 (our own documentation)
    return namespace["verify_license"]


def _doc_policy() -> dict:
    return build_policy(
        license_id=42,
        assigner=PolicyParty(1, "上海数据运营有限公司", "91310000MA1FL0000N"),
        assignee=PolicyParty(7, "Example Bank Shanghai Branch", "913100001322000012"),
        assets=[
            LicensedAsset(3, 2, ["registered_capital", "industry", "district"]),
            LicensedAsset(5, 1, ["tax_grade"]),
        ],
        purpose="internal_risk_control",
        starts_at=datetime(2025, 3, 1, tzinfo=UTC),
        ends_at=datetime(2026, 3, 1, tzinfo=UTC),
        query_quota=5000,
        price_fen=1_234_500,
    )


def _keys_response(*private_keys: Ed25519PrivateKey) -> dict:
    """What GET /api/v1/keys returns."""
    return {
        "keys": [
            {
                "id": crypto.key_id(k.public_key()),
                "alg": "Ed25519",
                "public_key": crypto.b64(crypto.public_key_bytes(k.public_key())),
            }
            for k in private_keys
        ]
    }


def test_snippet_verifies_a_signed_licence(verify_license) -> None:
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    keys = _keys_response(other, key)
    document = sign_policy(key, _doc_policy())
    # As a client receives it: serialized by the API, parsed again.
    received = json.loads(json.dumps(document, ensure_ascii=False, indent=2))
    assert verify_license(received, keys) is True

    tampered = json.loads(json.dumps(received))
    tampered["policy"]["permission"][0]["constraint"][0]["rightOperand"] = "commercial_product"
    assert verify_license(tampered, keys) is False

    forged = {**received, "signature": sign_policy(other, _doc_policy())["signature"]}
    assert verify_license(forged, keys) is False


def test_snippet_refuses_an_unpublished_key(verify_license) -> None:
    document = sign_policy(Ed25519PrivateKey.generate(), _doc_policy())
    with pytest.raises(StopIteration):
        verify_license(document, _keys_response(Ed25519PrivateKey.generate()))


def test_documented_canonical_json_is_the_signed_bytes() -> None:
    policy = _doc_policy()
    documented = json.dumps(
        policy, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    assert documented == crypto.canonical_json(policy)


def test_documented_key_id_rule() -> None:
    key = Ed25519PrivateKey.generate().public_key()
    import hashlib

    assert crypto.key_id(key) == hashlib.sha256(crypto.public_key_bytes(key)).hexdigest()[:16]


def test_example_policy_is_current() -> None:
    [example] = [block for block in _blocks("json") if '"@type": "Agreement"' in block]
    assert json.loads(example) == _doc_policy()
