"""The platform's keys, read from the app config once per app."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from flask import Flask, current_app

from market.crypto import b64, key_id, private_key_from_b64, public_key_bytes


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    public: Ed25519PublicKey
    id: str

    def describe(self) -> dict[str, str]:
        return {"id": self.id, "alg": "Ed25519", "public_key": b64(public_key_bytes(self.public))}


def init_keys(app: Flask) -> None:
    private = private_key_from_b64(app.config["MARKET_SIGNING_KEY"])
    public = private.public_key()
    app.extensions["market.signing_key"] = SigningKey(private, public, key_id(public))
    app.extensions["market.pseudonym_key"] = app.config["MARKET_PSEUDONYM_KEY"].encode("utf-8")


def signing_key() -> SigningKey:
    return current_app.extensions["market.signing_key"]


def public_keys() -> dict[str, Ed25519PublicKey]:
    """Keys that verify platform signatures, by id (one today; rotation adds more)."""
    key = signing_key()
    return {key.id: key.public}


def pseudonym_key() -> bytes:
    return current_app.extensions["market.pseudonym_key"]
