"""Appending to and verifying the audit chain.

Appends are serialized so that concurrent writers never fork the chain: on PostgreSQL with a
transaction-scoped advisory lock, on SQLite by the ``BEGIN IMMEDIATE`` every transaction
starts with (see ``market.database``). The event is flushed in the caller's transaction, so
it commits or rolls back together with the state change it records.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from flask import current_app
from sqlalchemy.orm import Session

from market.accounts.actor import Actor
from market.audit.models import GENESIS_HASH, AuditCheckpoint, AuditEvent
from market.crypto import canonical_json, sign, verify
from market.db import iso, utcnow

#: Arbitrary but fixed: the advisory-lock key that guards the chain's head ("audit" in hex).
_PG_LOCK_KEY = 0x6175646974


def _normalize(data: Mapping[str, Any] | None) -> dict[str, Any]:
    """Round-trip through canonical JSON so that what is hashed is exactly what is stored."""
    return json.loads(canonical_json(dict(data or {})))


def event_content(
    seq: int,
    at: dt.datetime,
    type_: str,
    actor: Mapping[str, Any],
    subject_type: str | None,
    subject_id: str | None,
    data: Mapping[str, Any],
) -> dict[str, Any]:
    return {
        "seq": seq,
        "at": iso(at),
        "type": type_,
        "actor": dict(actor),
        "subject": {"type": subject_type, "id": subject_id} if subject_type else None,
        "data": dict(data),
    }


def chain_hash(prev_hash: str, content: Mapping[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + canonical_json(content)).hexdigest()


def _lock_head(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})


def record(
    session: Session,
    type_: str,
    actor: Actor,
    subject: tuple[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Append one event in the caller's transaction and return it (flushed, not committed).

    ``data`` must be JSON-native and must never hold raw personal data.
    """
    _lock_head(session)
    head = session.execute(
        sa.select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    seq, prev_hash = (head.seq + 1, head.hash) if head else (1, GENESIS_HASH)
    at = utcnow()
    subject_type, subject_id = (subject[0], str(subject[1])) if subject else (None, None)
    payload = _normalize(data)
    actor_dict = actor.audit_dict()
    content = event_content(seq, at, type_, actor_dict, subject_type, subject_id, payload)
    event = AuditEvent(
        seq=seq,
        at=at,
        type=type_,
        actor_user_id=actor.user_id,
        actor_org_id=actor.org_id,
        actor=actor_dict,
        subject_type=subject_type,
        subject_id=subject_id,
        data=payload,
        prev_hash=prev_hash,
        hash=chain_hash(prev_hash, content),
    )
    session.add(event)
    every = current_app.config["MARKET_AUDIT_CHECKPOINT_EVERY"]
    if every and seq % every == 0:
        from market.keys import signing_key

        key = signing_key()
        session.add(
            AuditCheckpoint(
                seq=seq,
                hash=event.hash,
                key_id=key.id,
                signature=sign(key.private, {"seq": seq, "hash": event.hash}),
                at=at,
            )
        )
    session.flush()
    return event


@dataclass
class VerifyResult:
    valid: bool
    events: int
    head: str
    first_invalid_seq: int | None = None
    reason: str | None = None
    checkpoints: int = 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "valid": self.valid,
            "events": self.events,
            "head": self.head,
            "checkpoints": self.checkpoints,
        }
        if not self.valid:
            out["first_invalid_seq"] = self.first_invalid_seq
            out["reason"] = self.reason
        return out


def _chain_rows() -> sa.Select:
    return sa.select(
        AuditEvent.seq,
        AuditEvent.at,
        AuditEvent.type,
        AuditEvent.actor,
        AuditEvent.subject_type,
        AuditEvent.subject_id,
        AuditEvent.data,
        AuditEvent.prev_hash,
        AuditEvent.hash,
    ).order_by(AuditEvent.seq).execution_options(yield_per=2000)


def verify_chain(session: Session, keys: Mapping[str, Ed25519PublicKey]) -> VerifyResult:
    """Recompute the chain from the genesis hash and check every signed checkpoint.

    Finds the first invalid ``seq`` after an edit (hash mismatch), a deletion (a gap, or a
    checkpoint past the end), or a reordering (a broken ``prev_hash`` link).
    """
    checkpoints = {
        cp.seq: cp for cp in session.scalars(sa.select(AuditCheckpoint).order_by(AuditCheckpoint.seq))
    }
    expected_seq, prev, count = 1, GENESIS_HASH, 0

    def bad(seq: int, reason: str) -> VerifyResult:
        return VerifyResult(False, count, prev, seq, reason, len(checkpoints))

    # ``with`` closes the server-side cursor (PostgreSQL) when we stop early.
    with session.execute(_chain_rows()) as rows:
        for row in rows:
            if row.seq != expected_seq:
                return bad(expected_seq, "missing or reordered event")
            content = event_content(
                row.seq, row.at, row.type, row.actor, row.subject_type, row.subject_id, row.data
            )
            if row.prev_hash != prev:
                return bad(row.seq, "broken link to the previous event")
            if chain_hash(prev, content) != row.hash:
                return bad(row.seq, "event content does not match its hash")
            cp = checkpoints.get(row.seq)
            if cp is not None:
                key = keys.get(cp.key_id)
                signed = {"seq": cp.seq, "hash": cp.hash}
                if cp.hash != row.hash or key is None or not verify(key, signed, cp.signature):
                    return bad(row.seq, "signed checkpoint does not match")
            prev = row.hash
            count += 1
            expected_seq += 1
    beyond = [seq for seq in checkpoints if seq >= expected_seq]
    if beyond:
        return bad(expected_seq, "events after this point were removed (a checkpoint is past the end)")
    return VerifyResult(True, count, prev, checkpoints=len(checkpoints))


def event_filters(
    *,
    type_: str | None = None,
    actor_org: int | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    subject: tuple[str, Any] | None = None,
) -> sa.Select:
    stmt = sa.select(AuditEvent)
    if type_:
        # "license" matches "license.created", "license.revoked"...; an exact type matches itself.
        stmt = stmt.where(sa.or_(AuditEvent.type == type_, AuditEvent.type.startswith(type_ + ".")))
    if actor_org is not None:
        stmt = stmt.where(AuditEvent.actor_org_id == actor_org)
    if since is not None:
        stmt = stmt.where(AuditEvent.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEvent.at < until)
    if subject is not None:
        stmt = stmt.where(AuditEvent.subject_type == subject[0], AuditEvent.subject_id == str(subject[1]))
    return stmt


def event_dict(event: AuditEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "at": iso(event.at),
        "type": event.type,
        "actor": event.actor,
        "subject": {"type": event.subject_type, "id": event.subject_id} if event.subject_type else None,
        "data": event.data,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def record_denial(code: int, message: str) -> None:
    """Record a refused request (401/403). Called by the error handler after rollback."""
    from flask import g, request

    from market.accounts.actor import ANONYMOUS
    from market.extensions import db

    actor = g.get("actor") or ANONYMOUS
    record(
        db.session,
        "access.denied" if code == 403 else "access.unauthenticated",
        actor,
        data={"method": request.method, "path": request.path, "status": code},
    )
