from __future__ import annotations

import datetime as dt
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from market.db import Base, UTCDateTime, utcnow


class OrgKind(StrEnum):
    department = "department"
    buyer = "buyer"
    operator = "operator"
    regulator = "regulator"
    subject = "subject"


class OrgStatus(StrEnum):
    #: Self-registered and waiting for the operator's admission decision.
    pending = "pending"
    active = "active"
    refused = "refused"


class Organization(Base):
    __tablename__ = "organizations"
    __table_args__ = (
        sa.CheckConstraint(
            "kind IN ('department','buyer','operator','regulator','subject')", name="kind"
        ),
        sa.CheckConstraint("status IN ('pending','active','refused')", name="status"),
        sa.CheckConstraint("length(credit_code) = 18", name="credit_code_length"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(20), index=True)
    #: Unified Social Credit Code (GB 32100-2015), validated by its check character.
    credit_code: Mapped[str] = mapped_column(sa.String(18), unique=True)
    status: Mapped[str] = mapped_column(sa.String(20), default=OrgStatus.active)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    users: Mapped[list[User]] = relationship(back_populates="organization")


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Stored lower-cased so that lookups are case-insensitive on every backend.
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    #: argon2id hash (argon2-cffi's PasswordHasher); never the password.
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    is_active: Mapped[bool] = mapped_column(default=True)
    #: Bumped on logout-everywhere and password change; browser sessions carry the epoch
    #: they were issued under and die when it moves.
    session_epoch: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: The language the user chose ("zh" or "en"); None until they choose (see
    #: market.extensions.select_locale for the order in which choices win).
    language: Mapped[str | None] = mapped_column(sa.String(8))

    organization: Mapped[Organization] = relationship(back_populates="users", lazy="joined")

    @property
    def role(self) -> str:
        return self.organization.kind


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    #: SHA-256 of the token. Tokens carry 256 bits of entropy, so a fast hash is enough and
    #: lets every request look its token up by index.
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    #: The first characters, shown in listings so that people can tell tokens apart.
    prefix: Mapped[str] = mapped_column(sa.String(12))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship(lazy="joined")


class UserSession(Base):
    """A browser session, held on the server so that it can end there.

    The cookie carries only a random identifier; its SHA-256 is stored here. A session ends
    at logout, at "log out everywhere", after ``MARKET_SESSION_IDLE_MINUTES`` without a
    request, and ``MARKET_SESSION_MAX_HOURS`` after login, whatever the cookie says.
    """

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    sid_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: logout, everywhere, idle, expired (codes, not prose).
    end_reason: Mapped[str | None] = mapped_column(sa.String(20))


class LoginThrottle(Base):
    """Failed logins per account (keyed by a keyed fingerprint of the login name, so that
    unknown names are throttled the same way and no e-mail is stored), shared by the form
    and the API and by every app server through the database."""

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    last_failure_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: No attempt is checked before this instant (exponential backoff, capped).
    blocked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
