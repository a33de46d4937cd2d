"""One event's place in the chain: its neighbours, whether its links hold, and the signed
checkpoint that covers it (the first checkpoint at or after it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.orm import Session

from market.audit.models import GENESIS_HASH, AuditCheckpoint, AuditEvent
from market.audit.services import chain_hash, event_content
from market.crypto import verify
from market.db import iso


@dataclass
class ChainPosition:
    event: AuditEvent
    previous_seq: int | None
    next_seq: int | None
    #: The event's ``prev_hash`` equals the previous event's hash (or the genesis hash).
    link_ok: bool
    #: The event's content hashes to its stored ``hash``.
    hash_ok: bool
    checkpoint: AuditCheckpoint | None
    #: The checkpoint's Ed25519 signature verifies with a known platform key.
    checkpoint_signature_ok: bool | None
    #: Events from this one up to the checkpoint (0 when the checkpoint is at this event).
    events_to_checkpoint: int | None

    def to_dict(self) -> dict[str, Any]:
        cp = self.checkpoint
        return {
            "seq": self.event.seq,
            "hash": self.event.hash,
            "prev_hash": self.event.prev_hash,
            "previous_seq": self.previous_seq,
            "next_seq": self.next_seq,
            "link_ok": self.link_ok,
            "hash_ok": self.hash_ok,
            "checkpoint": None
            if cp is None
            else {
                "seq": cp.seq,
                "hash": cp.hash,
                "signed_at": iso(cp.at),
                "public_key_id": cp.key_id,
                "signature": cp.signature,
                "signature_valid": bool(self.checkpoint_signature_ok),
                "events_after_this": self.events_to_checkpoint,
            },
        }


def position(
    session: Session, event: AuditEvent, keys: Mapping[str, Ed25519PublicKey]
) -> ChainPosition:
    """Where ``event`` sits: a few indexed reads, never a walk of the whole chain (that is
    ``verify_chain``). A checkpoint covers the event if it signs a later (or the same) head,
    since that head's hash depends on this event through the links."""
    previous = session.execute(
        sa.select(AuditEvent.seq, AuditEvent.hash)
        .where(AuditEvent.seq < event.seq)
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    ).first()
    next_seq = session.scalar(
        sa.select(AuditEvent.seq).where(AuditEvent.seq > event.seq).order_by(AuditEvent.seq)
        .limit(1)
    )
    expected_prev = previous.hash if previous is not None else GENESIS_HASH
    # A gap before this event (a deleted row) breaks the link as surely as a wrong hash.
    link_ok = event.prev_hash == expected_prev and (
        (previous is None and event.seq == 1) or (previous is not None and previous.seq == event.seq - 1)
    )
    content = event_content(
        event.seq, event.at, event.type, event.actor, event.subject_type, event.subject_id,
        event.data,
    )
    hash_ok = chain_hash(event.prev_hash, content) == event.hash
    checkpoint = session.scalar(
        sa.select(AuditCheckpoint).where(AuditCheckpoint.seq >= event.seq)
        .order_by(AuditCheckpoint.seq).limit(1)
    )
    signature_ok = None
    to_checkpoint = None
    if checkpoint is not None:
        key = keys.get(checkpoint.key_id)
        signature_ok = key is not None and verify(
            key, {"seq": checkpoint.seq, "hash": checkpoint.hash}, checkpoint.signature
        )
        to_checkpoint = checkpoint.seq - event.seq
    return ChainPosition(
        event, previous.seq if previous is not None else None, next_seq, link_ok, hash_ok,
        checkpoint, signature_ok, to_checkpoint,
    )
