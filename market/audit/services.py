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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from flask import current_app
from sqlalchemy.orm import Session

from market.accounts.actor import Actor
from market.audit.models import GENESIS_HASH, AuditCheckpoint, AuditEvent, AuditHeadObservation
from market.crypto import canonical_json, sign, verify
from market.db import iso, utcnow
from market.i18n import N_

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


_PG_LOCK = sa.text("SELECT pg_advisory_xact_lock(:key)")


def _lock_head(session: Session) -> None:
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        conn.execute(_PG_LOCK, {"key": _PG_LOCK_KEY})


def head_lock_column(dialect_name: str) -> sa.ColumnElement[Any] | None:
    """The chain's lock as a column, for a hot path to take it in a statement it runs anyway
    (e.g. ``UPDATE ... RETURNING``) before :func:`append` with ``head_locked=True`` or
    ``head=``, instead of in a round trip of its own. None where no lock is needed: on SQLite
    every transaction already began with ``BEGIN IMMEDIATE``."""
    if dialect_name == "postgresql":
        return sa.func.pg_advisory_xact_lock(
            sa.literal(_PG_LOCK_KEY, sa.BigInteger)
        ).label("audit_head_locked")
    return None


def head_columns() -> tuple[sa.ColumnElement[Any], ...]:
    """The chain's head (seq, hash) and the last checkpoint's time as three columns, for a
    hot path to read them in a statement it runs anyway and hand them to :func:`append`
    (``head=``) instead of a round trip of its own.

    Only in a statement that *starts after* the one that took the chain's lock
    (:func:`head_lock_column`) finished: a statement reads the database as of its own start,
    so one that took the lock and read the head at once could read a head that another
    writer replaced while it waited for the lock, and fork the chain."""
    last = sa.select(_events.c.seq, _events.c.hash).order_by(_events.c.seq.desc()).limit(1)
    checkpoint = sa.select(AuditCheckpoint.at).order_by(AuditCheckpoint.seq.desc()).limit(1)
    return (
        last.with_only_columns(_events.c.seq).scalar_subquery().label("audit_head_seq"),
        last.with_only_columns(_events.c.hash).scalar_subquery().label("audit_head_hash"),
        checkpoint.scalar_subquery().label("audit_checkpoint_at"),
    )


def _checkpoint_due(seq: int, at: dt.datetime, last: dt.datetime | None) -> bool:
    """Every N events, and at the first event once T minutes passed since the last checkpoint
    (at ``last``; ``MARKET_AUDIT_CHECKPOINT_EVERY``, ``MARKET_AUDIT_CHECKPOINT_MINUTES``; 0
    turns a rule off), so that a quiet chain is not left unsigned for long."""
    every = current_app.config["MARKET_AUDIT_CHECKPOINT_EVERY"]
    if every and seq % every == 0:
        return True
    minutes = current_app.config.get("MARKET_AUDIT_CHECKPOINT_MINUTES", 0)
    if not minutes:
        return False
    return last is None or at - last >= dt.timedelta(minutes=minutes)


def _add_checkpoint(session: Session, seq: int, hash_: str, at: dt.datetime) -> AuditCheckpoint:
    from market.keys import signing_key

    key = signing_key()
    checkpoint = AuditCheckpoint(
        seq=seq,
        hash=hash_,
        key_id=key.id,
        signature=sign(key.private, {"seq": seq, "hash": hash_}),
        at=at,
    )
    session.add(checkpoint)
    return checkpoint


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
    head = session.execute(_HEAD_AND_CHECKPOINT).first()
    seq, prev_hash = (head[0] + 1, head[1]) if head else (1, GENESIS_HASH)
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
    if _checkpoint_due(seq, at, head[2] if head else None):
        _add_checkpoint(session, seq, event.hash, at)
    session.flush()
    # The notification centre: the events that concern someone notify them, in this
    # transaction (market.notifications.rules).
    from market.notifications.rules import notify_for_event

    notify_for_event(session, event)
    return event


_events = AuditEvent.__table__
#: Built once (SQLAlchemy memoizes their cache keys): the head with the last checkpoint's time,
#: and the insert of an event.
_HEAD_AND_CHECKPOINT = sa.select(
    _events.c.seq,
    _events.c.hash,
    sa.select(AuditCheckpoint.at).order_by(AuditCheckpoint.seq.desc()).limit(1).scalar_subquery(),
).order_by(_events.c.seq.desc()).limit(1)
_EVENT_FIELDS = ("seq", "at", "type", "actor_user_id", "actor_org_id", "actor", "subject_type",
                 "subject_id", "data", "prev_hash", "hash")
_INSERT_EVENT = sa.insert(_events).values(
    {name: sa.bindparam(name, type_=_events.c[name].type) for name in _EVENT_FIELDS}
)
def append(
    session: Session,
    type_: str,
    actor: Actor,
    subject: tuple[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
    *,
    head_locked: bool = False,
    head: Sequence[Any] | None = None,
) -> tuple[int, str]:
    """:func:`record` for hot paths: the same event, hash and checkpoints, written by Core in
    fewer round trips (the head and the last checkpoint's time in one statement, after the
    lock), without an ORM object; returns ``(seq, hash)``. Event types that notify someone go
    through :func:`record` (the notification rules read the ORM event).

    ``head_locked``: this transaction already holds the chain's lock, taken by a statement
    that returned :func:`head_lock_column`; ``head``: and the values of :func:`head_columns`
    read by a later statement (never pass either otherwise: two writers could then read the
    same head and fork the chain)."""
    from market.notifications.rules import RULES

    if type_ in RULES:
        event = record(session, type_, actor, subject, data)
        return event.seq, event.hash
    conn = session.connection()
    if head is not None:
        if head[0] is None:
            head = None  # an empty chain
    else:
        if not head_locked:
            _lock_head(session)
        head = conn.execute(_HEAD_AND_CHECKPOINT).first()
    seq, prev_hash = (head[0] + 1, head[1]) if head else (1, GENESIS_HASH)
    at = utcnow()
    subject_type, subject_id = (subject[0], str(subject[1])) if subject else (None, None)
    payload = _normalize(data)
    actor_dict = actor.audit_dict()
    content = event_content(seq, at, type_, actor_dict, subject_type, subject_id, payload)
    hash_ = chain_hash(prev_hash, content)
    conn.execute(
        _INSERT_EVENT,
        {
            "seq": seq, "at": at, "type": type_, "actor_user_id": actor.user_id,
            "actor_org_id": actor.org_id, "actor": actor_dict, "subject_type": subject_type,
            "subject_id": subject_id, "data": payload, "prev_hash": prev_hash, "hash": hash_,
        },
    )
    if _checkpoint_due(seq, at, head[2] if head else None):
        _add_checkpoint(session, seq, hash_, at)
        session.flush()
    return seq, hash_


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


#: Reasons a verification fails (English msgids; translated where a person reads them).
MISSING = N_("missing or reordered event")
BROKEN_LINK = N_("broken link to the previous event")
BAD_HASH = N_("event content does not match its hash")
BAD_CHECKPOINT = N_("signed checkpoint does not match")
CHECKPOINT_PAST_END = N_("events after this point were removed (a checkpoint is past the end)")
OBSERVED_HEAD_MISMATCH = N_("a head a regulator saw does not match this event")
OBSERVED_HEAD_PAST_END = N_(
    "events after this point were removed (a head a regulator saw is past the end)"
)
EXPECTED_HEAD_MISMATCH = N_("the expected head does not match this event")
EXPECTED_HEAD_PAST_END = N_(
    "events after this point were removed (the expected head is past the end)"
)


def verify_chain(
    session: Session,
    keys: Mapping[str, Ed25519PublicKey],
    expect_head: tuple[int, str] | None = None,
) -> VerifyResult:
    """Recompute the chain from the genesis hash and check every signed checkpoint, every
    head a regulator recorded, and ``expect_head`` (``(seq, hash)`` kept outside the system).

    Finds the first invalid ``seq`` after an edit (hash mismatch), a deletion (a gap, or a
    checkpoint, a recorded head or the expected head past the end), or a reordering (a broken
    ``prev_hash`` link). Truncating the tail below a signed or recorded head is a deletion.
    """
    checkpoints = {
        cp.seq: cp for cp in session.scalars(sa.select(AuditCheckpoint).order_by(AuditCheckpoint.seq))
    }
    # (seq, hash) → reason; the expected head first, so that its reason wins on a tie.
    heads: dict[int, dict[str, str]] = {}
    for seq, hash_ in session.execute(
        sa.select(AuditHeadObservation.seq, AuditHeadObservation.hash).distinct()
    ):
        heads.setdefault(seq, {})[hash_] = "observed"
    if expect_head is not None:
        heads.setdefault(expect_head[0], {})[expect_head[1]] = "expected"
    expected_seq, prev, count = 1, GENESIS_HASH, 0

    def bad(seq: int, reason: str) -> VerifyResult:
        return VerifyResult(False, count, prev, seq, reason, len(checkpoints))

    # ``with`` closes the server-side cursor (PostgreSQL) when we stop early.
    with session.execute(_chain_rows()) as rows:
        for row in rows:
            if row.seq != expected_seq:
                return bad(expected_seq, MISSING)
            content = event_content(
                row.seq, row.at, row.type, row.actor, row.subject_type, row.subject_id, row.data
            )
            if row.prev_hash != prev:
                return bad(row.seq, BROKEN_LINK)
            if chain_hash(prev, content) != row.hash:
                return bad(row.seq, BAD_HASH)
            cp = checkpoints.get(row.seq)
            if cp is not None:
                key = keys.get(cp.key_id)
                signed = {"seq": cp.seq, "hash": cp.hash}
                if cp.hash != row.hash or key is None or not verify(key, signed, cp.signature):
                    return bad(row.seq, BAD_CHECKPOINT)
            for hash_, kind in heads.get(row.seq, {}).items():
                if hash_ != row.hash:
                    return bad(
                        row.seq,
                        EXPECTED_HEAD_MISMATCH if kind == "expected" else OBSERVED_HEAD_MISMATCH,
                    )
            prev = row.hash
            count += 1
            expected_seq += 1
    if expect_head is not None and expect_head[0] >= expected_seq:
        return bad(expected_seq, EXPECTED_HEAD_PAST_END)
    if any(seq >= expected_seq for seq in checkpoints):
        return bad(expected_seq, CHECKPOINT_PAST_END)
    if any(seq >= expected_seq for seq in heads):
        return bad(expected_seq, OBSERVED_HEAD_PAST_END)
    return VerifyResult(True, count, prev, checkpoints=len(checkpoints))


# ------------------------------------------------------------------------- the signed head


@dataclass
class SignedHead:
    seq: int
    hash: str
    signed_at: dt.datetime
    signature: str
    public_key_id: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "hash": self.hash,
            "signed_at": iso(self.signed_at),
            "signature": self.signature,
            "public_key_id": self.public_key_id,
        }


def signed_head(session: Session) -> SignedHead | None:
    """The chain's current head, signed: the latest checkpoint, after signing the head first
    if events were appended since (so that whoever reads it can later detect a truncation
    below it). ``None`` while the chain is empty. Flushes; the caller commits.
    """
    _lock_head(session)
    head = session.execute(
        sa.select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    if head is None:
        return None
    checkpoint = session.get(AuditCheckpoint, head.seq)
    if checkpoint is None:
        checkpoint = _add_checkpoint(session, head.seq, head.hash, utcnow())
        session.flush()
    return SignedHead(
        checkpoint.seq, checkpoint.hash, checkpoint.at, checkpoint.signature, checkpoint.key_id
    )


def verify_signed_head(head: Mapping[str, Any], keys: Mapping[str, Ed25519PublicKey]) -> bool:
    """Whether ``{seq, hash, signature, public_key_id}`` carries a valid platform signature."""
    key = keys.get(str(head.get("public_key_id")))
    signed = {"seq": head.get("seq"), "hash": head.get("hash")}
    return key is not None and verify(key, signed, str(head.get("signature")))


def observe_head(session: Session, actor: Actor, head: SignedHead, source: str) -> None:
    """Record that ``actor`` saw ``head`` (once per observer and head). Flushes."""
    seen = session.scalar(
        sa.select(AuditHeadObservation.id).where(
            AuditHeadObservation.seq == head.seq,
            AuditHeadObservation.hash == head.hash,
            AuditHeadObservation.observer_user_id == actor.user_id,
        ).limit(1)
    )
    if seen is None:
        session.add(
            AuditHeadObservation(
                seq=head.seq, hash=head.hash, observer_user_id=actor.user_id,
                observer_org_id=actor.org_id, source=source, observed_at=utcnow(),
            )
        )
        session.flush()


@dataclass
class LostHead:
    """A head someone saw that the chain no longer reaches (truncated or rewritten)."""

    seq: int
    hash: str
    observed_at: dt.datetime
    current_hash: str | None


def lost_heads(session: Session, limit: int = 20) -> list[LostHead]:
    """Recorded heads whose event is gone or has another hash, newest first (one query)."""
    rows = session.execute(
        sa.select(
            AuditHeadObservation.seq,
            AuditHeadObservation.hash,
            sa.func.min(AuditHeadObservation.observed_at).label("observed_at"),
            AuditEvent.hash.label("current_hash"),
        )
        .outerjoin(AuditEvent, AuditEvent.seq == AuditHeadObservation.seq)
        .where(sa.or_(AuditEvent.seq.is_(None), AuditEvent.hash != AuditHeadObservation.hash))
        .group_by(AuditHeadObservation.seq, AuditHeadObservation.hash, AuditEvent.hash)
        .order_by(AuditHeadObservation.seq.desc())
        .limit(limit)
    ).all()
    return [LostHead(r.seq, r.hash, r.observed_at, r.current_hash) for r in rows]


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
