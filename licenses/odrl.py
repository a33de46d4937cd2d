"""ODRL 2.2 licence documents, and their Ed25519 signatures.

A licence is an ODRL ``Agreement`` between the operator (assigner) and the buyer (assignee).
It is a compact policy (ODRL Information Model 2.2, §2.7.1): the targets, the assigner and the
assignee are declared once on the policy and apply to every rule.

- Targets: one ``Asset`` per licensed dataset version, ``urn:market:dataset:{id}:v{version}``,
  listing the licensed columns in ``market:columns``.
- Permission: ``use``, constrained by purpose, the term (``dateTime`` ≥ start and < end) and
  the query quota (``count`` ≤ quota). If the licence was paid for, a ``compensate`` duty
  records the price and the refund rule on revocation (:data:`REFUND_RULE`).
- Prohibitions: ``distribute``, ``transfer`` (the buyer gets a usage right; ownership stays
  with the government, 所有权与使用权分离) and the platform action ``market:reidentify``.

The document only holds JSON-native values, so its canonical JSON (sorted keys, compact
separators, UTF-8) is what is signed and what a verifier recomputes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypedDict

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from licenses.errors import InvalidPolicy
from market import crypto
from market.i18n import N_

ODRL_CONTEXT = "http://www.w3.org/ns/odrl.jsonld"
#: Namespace of the platform's own terms. A URN, so that it does not pretend to resolve.
MARKET_VOCAB = "urn:market:vocab:"
POLICY_CONTEXT: list[Any] = [
    ODRL_CONTEXT,
    # The ODRL context already declares the xsd, rdf and vcard prefixes used below.
    {"market": MARKET_VOCAB},
]
#: Platform-defined action: linking desensitized records back to a person or enterprise.
REIDENTIFY_ACTION = "market:reidentify"
PROFILE = "urn:market:odrl-profile:v1"
PURPOSES = frozenset({"public_welfare", "research", "internal_risk_control", "commercial_product"})
USAGE_RIGHT_REMARK = (
    "Grants a right to use the data within this policy only. Ownership of the data stays with "
    "the government and the providing departments (所有权与使用权分离); it is not transferred."
)


#: The refund the operator owes when it revokes a paid licence (not for the buyer's breach):
#: the unused share of the term and of the query quota, whichever is smaller, of the price
#: paid, rounded up to the fen (:func:`licenses.refunds.usage_refund`). Part of the
#: ``compensate`` duty, so that the signed document states the rule the ledger applies.
REFUND_RULE: dict[str, Any] = {
    "@type": "market:RefundRule",
    "market:trigger": "market:revocation",
    "market:refundShare": "min(unusedTermShare, unusedQuotaShare)",
    "market:unusedTermShare": "(end - revokedAt) / (end - start)",
    "market:unusedQuotaShare": "queriesLeft / queryQuota",
    "market:rounding": "up to the fen, in the assignee's favour",
    "market:exception": "no refund for a revocation for the assignee's breach",
    "rdfs:comment": (
        "On revocation the assigner refunds the smaller of the unused share of the term and "
        "the unused share of the query quota, applied to the amount paid."
    ),
}


def license_uid(license_id: int | str) -> str:
    return f"urn:market:license:{license_id}"


def organization_uid(org_id: int | str) -> str:
    return f"urn:market:org:{org_id}"


def asset_uid(dataset_id: int | str, version: int) -> str:
    return f"urn:market:dataset:{dataset_id}:v{version}"


def dataset_iri(dataset_id: int | str) -> str:
    """The dataset's IRI in the DCAT catalogue (``market.datasets.dcat.dataset_iri``)."""
    return f"urn:market:dataset:{dataset_id}"


#: GB/T 43697-2024 levels a licensed asset may carry (core data is never licensed).
SECURITY_LEVELS = frozenset({"general", "important"})


@dataclass(frozen=True)
class PolicyParty:
    """An organization named in the policy. ``credit_code`` is its Unified Social Credit Code."""

    id: int | str
    name: str
    credit_code: str | None = None


@dataclass(frozen=True)
class LicensedAsset:
    """One licensed dataset version and the exact columns granted on it (not ``None``: the
    caller resolves "all columns" to the version's column list, so the document is explicit)."""

    dataset_id: int | str
    version: int
    columns: Sequence[str]
    #: GB/T 43697-2024 grade; when given, the asset names it (``market:securityLevel``) and
    #: links to its DCAT dataset (``dct:isVersionOf``).
    security_level: str | None = None
    #: The department that holds the rights in the data (``dct:rightsHolder``), and the number
    #: of the authorization agreement (授权运营协议) under which the operator licenses it.
    rights_holder: PolicyParty | None = None
    agreement: str | None = None


def format_datetime(value: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``; microseconds only when present. Raises InvalidPolicy if naive."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidPolicy(N_("datetimes in a policy must be timezone-aware"))
    utc = value.astimezone(UTC)
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ" if utc.microsecond else "%Y-%m-%dT%H:%M:%SZ"
    return utc.strftime(fmt)


def _party(party: PolicyParty, role: str) -> dict[str, Any]:
    if not party.name:
        raise InvalidPolicy(N_("the %(role)s needs a name"), role=role)
    out: dict[str, Any] = {
        "@type": ["Party", "vcard:Organization"],
        "uid": organization_uid(party.id),
        "vcard:fn": party.name,
    }
    if party.credit_code is not None:
        out["market:creditCode"] = party.credit_code
    return out


def _asset(asset: LicensedAsset) -> dict[str, Any]:
    if isinstance(asset.version, bool) or not isinstance(asset.version, int) or asset.version < 1:
        raise InvalidPolicy(N_("dataset versions are positive integers"))
    if isinstance(asset.columns, str):
        raise InvalidPolicy(N_("columns must be a list of names, not a string"))
    columns = sorted(set(asset.columns))
    if not columns or not all(isinstance(c, str) and c for c in columns):
        raise InvalidPolicy(
            N_("dataset %(dataset)s v%(version)s needs column names"),
            dataset=asset.dataset_id, version=asset.version,
        )
    out: dict[str, Any] = {
        "@type": "Asset",
        "uid": asset_uid(asset.dataset_id, asset.version),
        "market:dataset": str(asset.dataset_id),
        "market:version": asset.version,
        "market:columns": columns,
    }
    if asset.security_level is not None:
        if asset.security_level not in SECURITY_LEVELS:
            raise InvalidPolicy(
                N_("security level %(level)r cannot be licensed"), level=asset.security_level
            )
        out["market:securityLevel"] = asset.security_level
        # The ODRL context declares dct:; the target is a version of the DCAT dataset.
        out["dct:isVersionOf"] = {"@id": dataset_iri(asset.dataset_id)}
    if asset.rights_holder is not None:
        out["dct:rightsHolder"] = _party(asset.rights_holder, "rights holder")
    if asset.agreement is not None:
        out["market:authorizationAgreement"] = asset.agreement
    return out


def _yuan(fen: int) -> str:
    return str((Decimal(fen) / 100).quantize(Decimal("0.01")))


def build_policy(
    *,
    license_id: int | str,
    assigner: PolicyParty,
    assignee: PolicyParty,
    assets: Sequence[LicensedAsset],
    purpose: str,
    starts_at: datetime,
    ends_at: datetime,
    query_quota: int,
    price_fen: int = 0,
) -> dict[str, Any]:
    """The ODRL Agreement of a licence, as a JSON-LD dict.

    The same inputs always give the same document, whatever the order of ``assets`` or of
    their columns (both are sorted; duplicates of the same dataset version are refused).

    Raises :class:`InvalidPolicy` if: there is no asset, or the same dataset version twice;
    an asset has no columns; ``purpose`` is unknown; a datetime is naive or the term does not
    end after it starts; the quota or the price is negative or not an int.
    """
    if purpose not in PURPOSES:
        raise InvalidPolicy(
            N_("unknown purpose %(purpose)r; expected one of %(expected)s"),
            purpose=purpose, expected=sorted(PURPOSES),
        )
    for name, value in (("query_quota", query_quota), ("price_fen", price_fen)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidPolicy(N_("%(name)s must be a non-negative integer"), name=name)
    start, end = format_datetime(starts_at), format_datetime(ends_at)
    if ends_at <= starts_at:
        raise InvalidPolicy(N_("ends_at must be after starts_at"))
    if not assets:
        raise InvalidPolicy(N_("a licence covers at least one dataset"))
    targets = sorted((_asset(a) for a in assets), key=lambda t: t["uid"])
    uids = [t["uid"] for t in targets]
    if len(set(uids)) != len(uids):
        raise InvalidPolicy(N_("each dataset version may appear only once"))

    permission: dict[str, Any] = {
        "action": "use",
        "constraint": [
            {"leftOperand": "purpose", "operator": "eq", "rightOperand": purpose},
            {
                "leftOperand": "dateTime",
                "operator": "gteq",
                "rightOperand": {"@value": start, "@type": "xsd:dateTime"},
            },
            {
                "leftOperand": "dateTime",
                "operator": "lt",
                "rightOperand": {"@value": end, "@type": "xsd:dateTime"},
            },
            {"leftOperand": "count", "operator": "lteq", "rightOperand": query_quota},
        ],
    }
    if price_fen:
        permission["duty"] = [
            {
                "action": [
                    {
                        "rdf:value": {"@id": "odrl:compensate"},
                        "refinement": [
                            {
                                "leftOperand": "payAmount",
                                "operator": "eq",
                                "rightOperand": {
                                    "@value": _yuan(price_fen),
                                    "@type": "xsd:decimal",
                                },
                                "unit": "http://dbpedia.org/resource/Renminbi",
                            }
                        ],
                    }
                ],
                "market:refundOnRevocation": REFUND_RULE,
            }
        ]

    return {
        "@context": POLICY_CONTEXT,
        "@type": "Agreement",
        "uid": license_uid(license_id),
        "profile": PROFILE,
        "assigner": _party(assigner, "assigner"),
        "assignee": _party(assignee, "assignee"),
        "target": targets,
        "market:rightsType": "usage",
        "market:remark": USAGE_RIGHT_REMARK,
        "permission": [permission],
        "prohibition": [
            {"action": "distribute"},
            {"action": "transfer"},
            {"action": REIDENTIFY_ACTION},
        ],
    }


class SignedPolicy(TypedDict):
    """The body of ``GET /api/v1/licenses/{id}/document``."""

    policy: dict[str, Any]
    signature: str
    public_key_id: str


def sign_policy(private_key: Ed25519PrivateKey, policy: Mapping[str, Any]) -> SignedPolicy:
    """Sign the canonical JSON of ``policy`` with the platform key.

    Raises ``TypeError``/``ValueError`` if the policy holds non-JSON values (e.g. a datetime).
    """
    payload = dict(policy)
    return {
        "policy": payload,
        "signature": crypto.sign(private_key, payload),
        "public_key_id": crypto.key_id(private_key.public_key()),
    }


def verify_policy(
    public_keys: Mapping[str, Ed25519PublicKey] | Ed25519PublicKey,
    policy: Any,
    signature: Any,
    public_key_id: str | None = None,
) -> bool:
    """Whether ``signature`` is a valid signature of ``policy`` by one of ``public_keys``.

    ``public_keys`` is one key, or a map from key id to key (old keys stay valid after a key
    rotation). With ``public_key_id`` only that key is tried. Never raises: garbage in any
    argument gives ``False``.
    """
    if isinstance(public_keys, Ed25519PublicKey):
        candidates = [public_keys]
    elif isinstance(public_keys, Mapping):
        if public_key_id is not None:
            key = public_keys.get(public_key_id) if isinstance(public_key_id, str) else None
            candidates = [key] if key is not None else []
        else:
            candidates = list(public_keys.values())
    else:
        return False
    if not isinstance(policy, dict) or not isinstance(signature, str):
        return False
    for key in candidates:
        if not isinstance(key, Ed25519PublicKey):
            continue
        try:
            if crypto.verify(key, policy, signature):
                return True
        except (ValueError, TypeError, RecursionError):
            return False
    return False
