"""Browser sessions held on the server, and the per-account login throttle.

Sessions: the cookie carries a random identifier and nothing else that grants access; the
server keeps its SHA-256 with the login time and the last request's time, so that logout,
"log out everywhere", the idle timeout and the absolute lifetime are decided here and a
captured cookie stops working when its session ends.

Throttle: failed logins are counted per account fingerprint (a keyed hash of the login name,
the same for known and unknown names, so that it reveals nothing), in the database so that
every app server and both entrances (the form and ``POST /api/v1/auth/token``) share it.
After ``free`` failures each further one blocks the account's logins for an exponentially
growing delay capped at ``max_seconds``: a backoff, never a lockout, so an attacker cannot
keep a victim out for longer than the cap.

Services flush; the caller commits.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from market.accounts.actor import Actor
from market.accounts.models import ApiToken, LoginThrottle, User, UserSession
from market.audit import services as audit
from market.db import utcnow

#: last_seen_at is written at most this often per session (a write per request is waste).
TOUCH_EVERY = dt.timedelta(seconds=60)


@dataclass(frozen=True)
class SessionPolicy:
    idle: dt.timedelta
    lifetime: dt.timedelta


def _sid_hash(sid: str) -> str:
    return hashlib.sha256(sid.encode("utf-8")).hexdigest()


def open_session(session: Session, user: User) -> str:
    """Create a server-side session for ``user``; returns the identifier for the cookie."""
    sid = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(UserSession(user_id=user.id, sid_hash=_sid_hash(sid), created_at=now,
                            last_seen_at=now))
    session.flush()
    return sid


def resolve_session(session: Session, sid: str, policy: SessionPolicy) -> UserSession | None:
    """The live session for ``sid``, or None. An idle or too old session is ended here."""
    row = session.scalar(sa.select(UserSession).where(UserSession.sid_hash == _sid_hash(sid)))
    if row is None or row.ended_at is not None:
        return None
    now = utcnow()
    reason = None
    if now - row.created_at > policy.lifetime:
        reason = "expired"
    elif now - row.last_seen_at > policy.idle:
        reason = "idle"
    if reason is not None:
        row.ended_at, row.end_reason = now, reason
        session.flush()
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
    return row


def end_session(session: Session, sid: str, reason: str = "logout") -> None:
    row = session.scalar(sa.select(UserSession).where(UserSession.sid_hash == _sid_hash(sid)))
    if row is not None and row.ended_at is None:
        row.ended_at, row.end_reason = utcnow(), reason
        session.flush()


def live_sessions(session: Session, user_id: int) -> list[UserSession]:
    return list(session.scalars(
        sa.select(UserSession)
        .where(UserSession.user_id == user_id, UserSession.ended_at.is_(None))
        .order_by(UserSession.created_at.desc())
    ))


def logout_everywhere(session: Session, user: User, actor: Actor) -> dict[str, int]:
    """End every browser session of ``user`` and revoke every API token, the caller's own
    included; bump the session epoch so that nothing issued before survives. Audited."""
    now = utcnow()
    ended = session.execute(
        sa.update(UserSession)
        .where(UserSession.user_id == user.id, UserSession.ended_at.is_(None))
        .values(ended_at=now, end_reason="everywhere")
        .execution_options(synchronize_session=False)
    ).rowcount
    revoked = session.execute(
        sa.update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    user.session_epoch = (user.session_epoch or 0) + 1
    session.flush()
    data = {"sessions_ended": ended, "tokens_revoked": revoked}
    audit.record(session, "auth.logout_everywhere", actor, ("user", user.id), data)
    session.expire_all()
    return data


# ------------------------------------------------------------------------------ throttle


@dataclass(frozen=True)
class ThrottlePolicy:
    #: Failures allowed before the backoff starts.
    free: int = 5
    #: The longest block (seconds); each failure past ``free`` doubles it up to this.
    max_seconds: int = 300
    #: A count with no failure for this long starts again from zero.
    forget_after: dt.timedelta = dt.timedelta(hours=1)


def blocked_for(session: Session, key: str) -> int:
    """Seconds before ``key`` may try again (0: now)."""
    row = session.get(LoginThrottle, key)
    if row is None or row.blocked_until is None:
        return 0
    remaining = (row.blocked_until - utcnow()).total_seconds()
    return max(0, int(remaining + 0.999))


def backoff_seconds(failures: int, policy: ThrottlePolicy) -> int:
    """The block after the ``failures``-th consecutive failure: 0 up to ``free``, then 1, 2,
    4, ... seconds, capped at ``max_seconds``."""
    if failures < policy.free:
        return 0
    return min(policy.max_seconds, 2 ** min(failures - policy.free, 30))


def record_failure(session: Session, key: str, policy: ThrottlePolicy) -> int:
    """Count one failed attempt for ``key``; returns the block it now carries (seconds).

    Safe under concurrency: the row is created if missing (no error if another server did)
    and the count is incremented in the database, not read-modify-written here.
    """
    now = utcnow()
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    session.execute(
        insert(LoginThrottle)
        .values(key=key, failures=0, last_failure_at=now)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    stale = LoginThrottle.last_failure_at < now - policy.forget_after
    session.execute(
        sa.update(LoginThrottle)
        .where(LoginThrottle.key == key)
        .values(failures=sa.case((stale, 1), else_=LoginThrottle.failures + 1),
                last_failure_at=now)
        .execution_options(synchronize_session=False)
    )
    row = session.get(LoginThrottle, key, populate_existing=True)
    wait = backoff_seconds(row.failures, policy)
    row.blocked_until = now + dt.timedelta(seconds=wait) if wait else None
    session.flush()
    return wait


def reset(session: Session, key: str) -> None:
    session.execute(sa.delete(LoginThrottle).where(LoginThrottle.key == key))
