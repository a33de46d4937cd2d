from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from licenses.errors import InvalidPolicy
from licenses.odrl import (
    LicensedAsset,
    PolicyParty,
    build_policy,
    format_datetime,
    sign_policy,
    verify_policy,
)
from market import crypto

OPERATOR = PolicyParty(1, "上海数据运营有限公司", "91310000MA1FL0000N")
BANK = PolicyParty(7, "Example Bank Shanghai Branch", "913100001322000012")
START = datetime(2025, 3, 1, tzinfo=UTC)
END = datetime(2026, 3, 1, tzinfo=UTC)


def make_policy(**overrides):
    kwargs = dict(
        license_id=42,
        assigner=OPERATOR,
        assignee=BANK,
        assets=[
            LicensedAsset(3, 2, ["registered_capital", "industry", "district"]),
            LicensedAsset(5, 1, ["tax_grade"]),
        ],
        purpose="internal_risk_control",
        starts_at=START,
        ends_at=END,
        query_quota=5000,
        price_fen=1_234_500,
    )
    kwargs.update(overrides)
    return build_policy(**kwargs)


def test_agreement_shape() -> None:
    policy = make_policy()
    assert policy["@context"][0] == "http://www.w3.org/ns/odrl.jsonld"
    assert policy["@context"][1]["market"] == "urn:market:vocab:"
    assert policy["@type"] == "Agreement"
    assert policy["uid"] == "urn:market:license:42"
    assert policy["assigner"] == {
        "@type": ["Party", "vcard:Organization"],
        "uid": "urn:market:org:1",
        "vcard:fn": "上海数据运营有限公司",
        "market:creditCode": "91310000MA1FL0000N",
    }
    assert policy["assignee"]["uid"] == "urn:market:org:7"
    assert policy["assignee"]["market:creditCode"] == "913100001322000012"
    assert policy["target"] == [
        {
            "@type": "Asset",
            "uid": "urn:market:dataset:3:v2",
            "market:dataset": "3",
            "market:version": 2,
            "market:columns": ["district", "industry", "registered_capital"],
        },
        {
            "@type": "Asset",
            "uid": "urn:market:dataset:5:v1",
            "market:dataset": "5",
            "market:version": 1,
            "market:columns": ["tax_grade"],
        },
    ]
    assert policy["market:rightsType"] == "usage"
    assert "所有权与使用权分离" in policy["market:remark"]


def test_permission_constraints() -> None:
    [permission] = make_policy()["permission"]
    assert permission["action"] == "use"
    assert permission["constraint"] == [
        {"leftOperand": "purpose", "operator": "eq", "rightOperand": "internal_risk_control"},
        {
            "leftOperand": "dateTime",
            "operator": "gteq",
            "rightOperand": {"@value": "2025-03-01T00:00:00Z", "@type": "xsd:dateTime"},
        },
        {
            "leftOperand": "dateTime",
            "operator": "lt",
            "rightOperand": {"@value": "2026-03-01T00:00:00Z", "@type": "xsd:dateTime"},
        },
        {"leftOperand": "count", "operator": "lteq", "rightOperand": 5000},
    ]


def test_prohibitions_include_reidentification_and_transfer() -> None:
    policy = make_policy()
    actions = [rule["action"] for rule in policy["prohibition"]]
    assert actions == ["distribute", "transfer", "market:reidentify"]
    # The platform action is a compact IRI under a prefix the document's own context declares.
    prefix, _, name = "market:reidentify".partition(":")
    assert policy["@context"][1][prefix] + name == "urn:market:vocab:reidentify"


@pytest.mark.parametrize(("price", "amount"), [(1_234_500, "12345.00"), (5, "0.05"), (100, "1.00")])
def test_paid_licence_has_a_compensate_duty(price: int, amount: str) -> None:
    [duty] = make_policy(price_fen=price)["permission"][0]["duty"]
    [action] = duty["action"]
    assert action["rdf:value"] == {"@id": "odrl:compensate"}
    [refinement] = action["refinement"]
    assert refinement["leftOperand"] == "payAmount"
    assert refinement["rightOperand"] == {"@value": amount, "@type": "xsd:decimal"}


def test_free_licence_has_no_duty() -> None:
    policy = make_policy(price_fen=0, purpose="public_welfare")
    assert "duty" not in policy["permission"][0]


def test_deterministic_and_order_independent() -> None:
    a = make_policy()
    b = make_policy(
        assets=[
            LicensedAsset(5, 1, ("tax_grade", "tax_grade")),
            LicensedAsset(3, 2, ("district", "registered_capital", "industry")),
        ]
    )
    assert (
        crypto.canonical_json(a) == crypto.canonical_json(b) == crypto.canonical_json(make_policy())
    )


def test_json_native() -> None:
    policy = make_policy()
    assert json.loads(json.dumps(policy)) == policy


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2025, 3, 1, 8, 0, tzinfo=timezone(timedelta(hours=8))), "2025-03-01T00:00:00Z"),
        (datetime(2025, 3, 1, 0, 0, 0, 1500, tzinfo=UTC), "2025-03-01T00:00:00.001500Z"),
    ],
)
def test_format_datetime(value: datetime, expected: str) -> None:
    assert format_datetime(value) == expected


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"purpose": "marketing"}, "purpose"),
        ({"query_quota": -1}, "query_quota"),
        ({"query_quota": True}, "query_quota"),
        ({"query_quota": 1.0}, "query_quota"),
        ({"price_fen": -5}, "price_fen"),
        ({"assets": []}, "at least one"),
        ({"assets": [LicensedAsset(3, 1, ["a"]), LicensedAsset(3, 1, ["b"])]}, "only once"),
        ({"assets": [LicensedAsset(3, 1, [])]}, "column"),
        ({"assets": [LicensedAsset(3, 1, [""])]}, "column"),
        ({"assets": [LicensedAsset(3, 1, "abc")]}, "not a string"),
        ({"assets": [LicensedAsset(3, 0, ["a"])]}, "positive"),
        ({"ends_at": START}, "after"),
        ({"ends_at": START - timedelta(days=1)}, "after"),
        ({"starts_at": datetime(2025, 3, 1)}, "timezone"),
        ({"assignee": PolicyParty(7, "")}, "name"),
    ],
)
def test_invalid_policies(overrides, message) -> None:
    with pytest.raises(InvalidPolicy, match=message):
        make_policy(**overrides)


def test_credit_code_is_optional() -> None:
    assert "market:creditCode" not in make_policy(assignee=PolicyParty(9, "Uni"))["assignee"]


# --- signatures ----------------------------------------------------------------------------


def test_sign_and_verify(signing_key: Ed25519PrivateKey) -> None:
    public = signing_key.public_key()
    signed = sign_policy(signing_key, make_policy())
    assert set(signed) == {"policy", "signature", "public_key_id"}
    assert signed["public_key_id"] == crypto.key_id(public)
    assert verify_policy(public, signed["policy"], signed["signature"])
    assert verify_policy({signed["public_key_id"]: public}, signed["policy"], signed["signature"])
    assert verify_policy(
        {signed["public_key_id"]: public},
        signed["policy"],
        signed["signature"],
        signed["public_key_id"],
    )
    # The signature survives a JSON round trip with different formatting.
    reparsed = json.loads(json.dumps(signed["policy"], indent=4, ensure_ascii=True))
    assert verify_policy(public, reparsed, signed["signature"])


def test_key_rotation(signing_key: Ed25519PrivateKey) -> None:
    new_key = Ed25519PrivateKey.generate()
    keys = {
        crypto.key_id(signing_key.public_key()): signing_key.public_key(),
        crypto.key_id(new_key.public_key()): new_key.public_key(),
    }
    old_doc = sign_policy(signing_key, make_policy())
    new_doc = sign_policy(new_key, make_policy())
    assert verify_policy(keys, old_doc["policy"], old_doc["signature"])
    assert verify_policy(keys, new_doc["policy"], new_doc["signature"])
    # Naming the wrong key id fails even though another key would verify.
    assert not verify_policy(
        keys, old_doc["policy"], old_doc["signature"], new_doc["public_key_id"]
    )
    assert not verify_policy(keys, old_doc["policy"], old_doc["signature"], "0" * 16)


def _flip_first_byte(signature: str) -> str:
    """A signature that differs in real bits (editing base64 text can hit padding bits only)."""
    from market.crypto import b64, unb64

    raw = bytearray(unb64(signature))
    raw[0] ^= 0x01
    return b64(bytes(raw))


def _tampered(policy: dict) -> dict:
    changed = json.loads(json.dumps(policy))
    changed["permission"][0]["constraint"][3]["rightOperand"] = 50_000
    return changed


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda doc: (_tampered(doc["policy"]), doc["signature"]), id="tampered quota"),
        pytest.param(
            lambda doc: ({**doc["policy"], "uid": "urn:market:license:43"}, doc["signature"]),
            id="other licence",
        ),
        pytest.param(
            lambda doc: (doc["policy"], _flip_first_byte(doc["signature"])), id="tampered signature"
        ),
        pytest.param(lambda doc: (doc["policy"], ""), id="empty signature"),
        pytest.param(lambda doc: (doc["policy"], "!!!not base64!!!"), id="not base64"),
        pytest.param(lambda doc: (doc["policy"], None), id="signature None"),
        pytest.param(lambda doc: (doc["policy"], 12345), id="signature int"),
        pytest.param(lambda doc: (doc["policy"], doc["signature"] * 2), id="signature too long"),
        pytest.param(lambda doc: (None, doc["signature"]), id="policy None"),
        pytest.param(lambda doc: ([doc["policy"]], doc["signature"]), id="policy list"),
        pytest.param(lambda doc: ("a string", doc["signature"]), id="policy string"),
        pytest.param(lambda doc: ({"x": float("nan")}, doc["signature"]), id="policy NaN"),
        pytest.param(lambda doc: ({"x": {1, 2}}, doc["signature"]), id="policy with a set"),
        pytest.param(
            lambda doc: ({"x": datetime.now(UTC)}, doc["signature"]), id="policy datetime"
        ),
    ],
)
def test_verify_rejects_garbage(signing_key: Ed25519PrivateKey, mutate) -> None:
    doc = sign_policy(signing_key, make_policy())
    policy, signature = mutate(doc)
    assert verify_policy(signing_key.public_key(), policy, signature) is False
    assert (
        verify_policy({doc["public_key_id"]: signing_key.public_key()}, policy, signature) is False
    )


@pytest.mark.parametrize("keys", [None, "key", 42, {}, {"k": "not a key"}, {"k": None}, [1, 2]])
def test_verify_rejects_bad_keys(signing_key: Ed25519PrivateKey, keys) -> None:
    doc = sign_policy(signing_key, make_policy())
    assert verify_policy(keys, doc["policy"], doc["signature"]) is False


def test_other_key_does_not_verify(signing_key: Ed25519PrivateKey) -> None:
    doc = sign_policy(signing_key, make_policy())
    assert not verify_policy(
        Ed25519PrivateKey.generate().public_key(), doc["policy"], doc["signature"]
    )
