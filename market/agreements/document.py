"""The authorization agreement (授权运营协议) as a signed document, and its offline check.

Pure: imports neither Flask nor the database, only ``cryptography`` (through
:mod:`market.crypto`), so that a department or a regulator can sign and verify with this file
alone. Run ``python -m market.agreements.document`` for the command-line helper:

- ``sign --key SEED_FILE --document DOC.json``: prints the department's signature of the
  canonical JSON of the document (the key file holds the base64url Ed25519 private seed);
- ``keygen``: prints a new seed and its public key (the public key is what the department
  registers on the platform; the seed never leaves the department);
- ``verify --bundle AGREEMENT.json --operator-key PUBLIC_KEY``: checks both signatures.

The document is signed by the department; the operator countersigns the pair
``{"document": …, "department_signature": …}``, so its signature also covers the department's.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from market.crypto import (
    b64,
    key_id,
    load_public_key,
    private_key_from_b64,
    public_key_bytes,
    sign,
    verify,
)

DOCUMENT_TYPE = "public-data-authorization-agreement"
DOCUMENT_VERSION = 1
#: The rate is in basis points: 10 000 is the whole payment.
BPS = 10_000


def countersign_payload(document: Mapping[str, Any], department_signature: str) -> dict[str, Any]:
    """What the operator signs: the document and the department's signature of it."""
    return {"document": dict(document), "department_signature": department_signature}


def sign_document(private_key: Ed25519PrivateKey, document: Mapping[str, Any]) -> str:
    """The department's signature (base64url) of the canonical JSON of ``document``."""
    return sign(private_key, dict(document))


def countersign(
    private_key: Ed25519PrivateKey, document: Mapping[str, Any], department_signature: str
) -> str:
    """The operator's signature over the document and the department's signature."""
    return sign(private_key, countersign_payload(document, department_signature))


@dataclass(frozen=True)
class Verification:
    """The result of :func:`verify_bundle`: ``ok`` only if every check passed."""

    department_signature: bool
    department_key_id: bool
    operator_signature: bool

    @property
    def ok(self) -> bool:
        return self.department_signature and self.department_key_id and self.operator_signature


def verify_bundle(
    bundle: Mapping[str, Any], operator_keys: Mapping[str, Ed25519PublicKey]
) -> Verification:
    """Check a downloaded agreement ``{document, department_signature: {public_key, key_id,
    signature}, operator_signature: {key_id, signature}}``.

    The department's public key is taken from the bundle and must hash to the key id the
    bundle names (compare that id with the one the department published); the operator's key
    must be one of ``operator_keys`` (the platform's published keys, by id). Never raises for
    malformed input: a bundle that cannot be checked fails the check.
    """
    try:
        document = bundle["document"]
        dept = bundle["department_signature"]
        op = bundle["operator_signature"]
        dept_key = load_public_key(str(dept["public_key"]))
        dept_sig = str(dept["signature"])
        dept_ok = isinstance(document, dict) and verify(dept_key, document, dept_sig)
        dept_id_ok = key_id(dept_key) == dept.get("key_id")
        op_key = operator_keys.get(str(op.get("key_id")))
        op_ok = op_key is not None and verify(
            op_key, countersign_payload(document, dept_sig), str(op["signature"])
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        return Verification(False, False, False)
    return Verification(dept_ok, dept_id_ok, op_ok)


def public_key_b64(key: Ed25519PublicKey) -> str:
    return b64(public_key_bytes(key))


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m market.agreements.document")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("keygen", help="make a department signing key (seed and public key)")
    signer = sub.add_parser("sign", help="sign an agreement document as the department")
    signer.add_argument("--key", required=True, help="file holding the base64url private seed")
    signer.add_argument("--document", required=True, help="the document JSON (the draft's)")
    checker = sub.add_parser("verify", help="verify a downloaded agreement offline")
    checker.add_argument("--bundle", required=True)
    checker.add_argument("--operator-key", required=True, help="the platform's public key (b64)")
    args = parser.parse_args(argv)
    if args.command == "keygen":
        key = Ed25519PrivateKey.generate()
        from market.crypto import private_key_to_b64

        public = key.public_key()
        print(json.dumps({"seed": private_key_to_b64(key), "public_key": public_key_b64(public),
                          "key_id": key_id(public)}))
        return 0
    if args.command == "sign":
        with open(args.key, encoding="ascii") as fh:
            key = private_key_from_b64(fh.read().strip())
        with open(args.document, encoding="utf-8") as fh:
            document = json.load(fh)
        # A whole draft as served by the API is accepted too: sign its document.
        document = document.get("document", document)
        public = key.public_key()
        print(json.dumps({"key_id": key_id(public), "public_key": public_key_b64(public),
                          "signature": sign_document(key, document)}))
        return 0
    with open(args.bundle, encoding="utf-8") as fh:
        bundle = json.load(fh)
    operator = load_public_key(args.operator_key)
    result = verify_bundle(bundle, {key_id(operator): operator})
    print(json.dumps({"ok": result.ok, "department_signature": result.department_signature,
                      "department_key_id": result.department_key_id,
                      "operator_signature": result.operator_signature}))
    return 0 if result.ok else 1


if __name__ == "__main__":  # pragma: no cover - exercised by the CLI test through subprocess
    sys.exit(_main())
