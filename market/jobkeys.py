"""Handing a sealed upload's key to a queue worker without it ever being written anywhere.

A raw upload is sealed with a random key that lives only in the memory of the web process
that received it (:mod:`market.pipeline.sealed`): a crash leaves unreadable ciphertext. A
queue worker (Celery) is another process, so the key has to travel — and a broker message
is written to the broker's memory and, depending on its configuration, to its disk.

So the key never travels in the clear. Each worker process makes an X25519 key pair at
start-up, in memory only, and announces its public key (authenticated with an HMAC under
``MARKET_SECRET_KEY``, so that whoever can write to Redis cannot pose as a worker) together
with a queue of its own. The web process wraps the upload key for that one worker (X25519
ECDH → HKDF-SHA256 → AES-256-GCM, bound to the staging file's path) and sends the task to
that worker's queue. Whatever lands in the broker, on its disk or in a log is useless once
that worker process is gone: if it dies (``kill -9``), its private key dies with it, exactly
as the web process's key would, and the lease sweeper fails the version and deletes the
ciphertext.

Pure: no Flask, no Celery, no Redis.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_INFO = b"market.staging-key-wrap.v1"
_MAC_CONTEXT = b"market.worker-announcement.v1|"


class KeyUnwrapError(Exception):
    """A wrapped key that this worker cannot open (another worker's, or tampered)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode("ascii"))


def _raw(public: X25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def announcement_mac(secret: str, queue: str, public_b64: str) -> str:
    """HMAC-SHA256 over (queue, public key) under the app secret."""
    msg = _MAC_CONTEXT + queue.encode() + b"|" + public_b64.encode()
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class WorkerAnnouncement:
    """What a worker publishes: its own queue and its public key, authenticated."""

    queue: str
    public: str
    mac: str

    def verify(self, secret: str) -> bool:
        return hmac.compare_digest(self.mac, announcement_mac(secret, self.queue, self.public))


class WorkerKeyPair:
    """A worker process's key pair; the private half never leaves this object."""

    def __init__(self) -> None:
        self._private = X25519PrivateKey.generate()
        self.public_b64 = _b64(_raw(self._private.public_key()))

    def announce(self, secret: str, queue: str) -> WorkerAnnouncement:
        return WorkerAnnouncement(queue, self.public_b64, announcement_mac(secret, queue, self.public_b64))

    def unwrap(self, wrapped: str, context: str) -> bytes:
        """The upload key wrapped for this worker. Raises KeyUnwrapError otherwise."""
        try:
            blob = _unb64(wrapped)
            ephemeral, nonce, sealed = blob[:32], blob[32:44], blob[44:]
            shared = self._private.exchange(X25519PublicKey.from_public_bytes(ephemeral))
            kek = _kek(shared, ephemeral, _raw(self._private.public_key()))
            return AESGCM(kek).decrypt(nonce, sealed, context.encode())
        except (InvalidTag, ValueError) as exc:
            raise KeyUnwrapError("the upload key was not wrapped for this worker") from exc


def _kek(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=ephemeral + recipient, info=_INFO
    ).derive(shared)


def wrap_for(public_b64: str, key: bytes, context: str) -> str:
    """``key`` sealed for the holder of ``public_b64`` only (ephemeral-static X25519);
    ``context`` (the staging path) must match at unwrap time."""
    recipient = _unb64(public_b64)
    eph = X25519PrivateKey.generate()
    eph_raw = _raw(eph.public_key())
    shared = eph.exchange(X25519PublicKey.from_public_bytes(recipient))
    nonce = os.urandom(12)
    sealed = AESGCM(_kek(shared, eph_raw, recipient)).encrypt(nonce, key, context.encode())
    return _b64(eph_raw + nonce + sealed)
