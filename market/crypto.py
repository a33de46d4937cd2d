"""Canonical JSON and Ed25519 signatures.

Pure helpers shared by the audit checkpoints, signed quotes and license documents.
Key storage lives in :mod:`market.keys`; this module only deals with bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)


def canonical_json(obj: Any) -> bytes:
    """Deterministic UTF-8 JSON: sorted keys, no insignificant whitespace.

    Only JSON-native types are accepted; callers convert datetimes and Decimals first,
    so that the bytes a verifier recomputes are the bytes that were signed.
    """
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def unb64(text: str) -> bytes:
    pad = "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(text + pad)


def public_key_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """A short stable identifier for a public key: the first 16 hex of its SHA-256."""
    return sha256_hex(public_key_bytes(key))[:16]


def sign(private_key: Ed25519PrivateKey, payload: Any) -> str:
    """Sign the canonical JSON of ``payload``; returns URL-safe base64 without padding."""
    return b64(private_key.sign(canonical_json(payload)))


def verify(public_key: Ed25519PublicKey, payload: Any, signature: str) -> bool:
    """True if ``signature`` is a valid signature of ``payload``'s canonical JSON."""
    try:
        public_key.verify(unb64(signature), canonical_json(payload))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def load_public_key(raw_b64: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(unb64(raw_b64))


def private_key_from_b64(seed_b64: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(unb64(seed_b64))


def private_key_to_b64(key: Ed25519PrivateKey) -> str:
    return b64(
        key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
    )
