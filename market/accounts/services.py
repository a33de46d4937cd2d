"""Operations on organizations, users and tokens. Services flush; the caller commits."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from market.accounts import permissions as perm
from market.accounts import sessions as server_sessions
from market.accounts.actor import Actor
from market.accounts.models import ApiToken, Organization, OrgKind, OrgStatus, User
from market.audit import services as audit
from market.db import iso, utcnow
from market.errors import Conflict, NotFound, RateLimited, Unauthenticated, ValidationFailed
from market.idcodes import is_valid_uscc

#: argon2-cffi's defaults (RFC 9106's low-memory profile): what every real process uses.
PRODUCTION_HASHER_PARAMS = {"time_cost": 3, "memory_cost": 65536, "parallelism": 4}
#: The test suite's parameters (``MARKET_TEST_CHEAP_PASSWORD_HASHING``, honoured only under
#: ``TESTING``): the same argon2id, at a cost that does not dominate every fixture.
TEST_HASHER_PARAMS = {"time_cost": 1, "memory_cost": 64, "parallelism": 1}

_PRODUCTION_HASHER = PasswordHasher(**PRODUCTION_HASHER_PARAMS)
_hasher = _PRODUCTION_HASHER
#: Verified against when the e-mail is unknown, so both paths cost one argon2 verification
#: and response time does not reveal which accounts exist.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def password_hasher_params(config) -> dict[str, int]:
    """The argon2 parameters for an app's ``config``: production's unless the app is a test
    app (``TESTING``) that asks for cheap hashing. Never read from the environment."""
    if config.get("TESTING") and config.get("MARKET_TEST_CHEAP_PASSWORD_HASHING"):
        return dict(TEST_HASHER_PARAMS)
    return dict(PRODUCTION_HASHER_PARAMS)


def use_cheap_password_hashing_if_testing(config) -> None:
    """Switch this process to the test parameters if ``config`` asks for them (the test
    process only; a production config leaves the production hasher in place)."""
    global _hasher, _DUMMY_HASH
    params = password_hasher_params(config)
    if params == PRODUCTION_HASHER_PARAMS:
        return
    current = {"time_cost": _hasher.time_cost, "memory_cost": _hasher.memory_cost,
               "parallelism": _hasher.parallelism}
    if current != params:
        _hasher = PasswordHasher(**params)
        _DUMMY_HASH = _hasher.hash("not-a-real-password")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
MIN_PASSWORD = 10
TOKEN_PREFIX = "mk_"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ValidationFailed(
            _("The password is too short."),
            {"password": [_("Use at least %(count)s characters.", count=MIN_PASSWORD)]},
        )


def normalize_email(email: str) -> str:
    email = (email or "").strip().lower()
    if not _EMAIL.match(email) or len(email) > 254:
        raise ValidationFailed(
            _("The e-mail address is not valid."), {"email": [_("Not a valid e-mail address.")]}
        )
    return email


def validate_credit_code(code: str) -> str:
    code = (code or "").strip().upper()
    if not is_valid_uscc(code):
        raise ValidationFailed(
            _("The Unified Social Credit Code is not valid."),
            {"credit_code": [
                _("Not a valid 18-character code: check the characters and the check digit.")
            ]},
        )
    return code


def create_organization(
    session: Session,
    actor: Actor,
    *,
    name: str,
    kind: str,
    credit_code: str,
    status: str = OrgStatus.active,
    check: bool = True,
) -> Organization:
    """Create an organization. Raises Forbidden, ValidationFailed, or Conflict if the name or
    credit code is taken. ``check=False`` is for the CLI and self-registration paths."""
    if check:
        perm.require(perm.can_create_organization(actor), "Only the operator can create organizations.")
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise ValidationFailed(
            _("The name is required."), {"name": [_("Give a name of 1 to 200 characters.")]}
        )
    if kind not in OrgKind.__members__:
        raise ValidationFailed(
            _("Unknown organization kind."),
            {"kind": [_("Use one of: %(kinds)s.", kinds=", ".join(OrgKind))]},
        )
    credit_code = validate_credit_code(credit_code)
    clash = session.scalar(
        sa.select(Organization).where(
            sa.or_(Organization.name == name, Organization.credit_code == credit_code)
        )
    )
    if clash is not None:
        field = "name" if clash.name == name else "credit_code"
        raise Conflict(
            _("An organization with this name or credit code exists."),
            {field: [_("Already registered.")]},
        )
    org = Organization(name=name, kind=kind, credit_code=credit_code, status=status)
    session.add(org)
    session.flush()
    audit.record(
        session,
        "organization.created",
        actor,
        ("organization", org.id),
        {"name": name, "kind": kind, "status": status},
    )
    return org


def get_organization(session: Session, org_id: int) -> Organization:
    org = session.get(Organization, org_id)
    if org is None:
        raise NotFound(_("No such organization."))
    return org


def create_user(
    session: Session,
    actor: Actor,
    *,
    email: str,
    password: str,
    organization_id: int,
    check: bool = True,
) -> User:
    """Create a user in an existing organization. Raises Forbidden, NotFound,
    ValidationFailed, or Conflict if the e-mail is taken."""
    if check:
        perm.require(perm.can_create_user(actor, organization_id), "Only the operator can create users.")
    email = normalize_email(email)
    _check_password(password)
    org = session.get(Organization, organization_id)
    if org is None:
        raise ValidationFailed(
            _("No such organization."), {"organization_id": [_("Unknown organization.")]}
        )
    if session.scalar(sa.select(User.id).where(User.email == email)) is not None:
        raise Conflict(
            _("This e-mail address is already registered."),
            {"email": [_("Already registered.")]},
        )
    user = User(email=email, password_hash=hash_password(password), organization=org)
    session.add(user)
    session.flush()
    audit.record(
        session,
        "user.created",
        actor,
        ("user", user.id),
        {"organization_id": org.id, "role": org.kind},
    )
    return user


def _email_fingerprint(email: str, key: bytes) -> str:
    """A keyed fingerprint of an attempted login name: correlatable, not readable."""
    return hmac.new(key, email.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


def authenticate(session: Session, email: str, password: str, *, key: bytes) -> User:
    """Check credentials and record the login. Raises Unauthenticated (carrying an
    ``auth.login_failed`` audit event) for any wrong e-mail, password or inactive account."""
    email_n = (email or "").strip().lower()
    user = session.scalar(sa.select(User).where(User.email == email_n)) if email_n else None
    ok = False
    try:
        ok = _hasher.verify(user.password_hash if user else _DUMMY_HASH, password or "")
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    if not ok or user is None or not user.is_active:
        reason = "unknown_user" if user is None else ("inactive" if ok else "bad_password")
        raise Unauthenticated(
            _l("The e-mail or password is wrong."),
            audit=(
                "auth.login_failed",
                ("user", user.id) if user else None,
                {"reason": reason, "login": _email_fingerprint(email_n, key)},
            ),
        )
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    audit.record(session, "auth.login", Actor.from_user(user), ("user", user.id), {})
    return user


def login(
    session: Session,
    email: str,
    password: str,
    *,
    key: bytes,
    throttle: server_sessions.ThrottlePolicy,
) -> User:
    """:func:`authenticate` behind the per-account throttle shared by every entrance.

    Raises RateLimited (``retry_after`` set, an ``auth.login_throttled`` event recorded, the
    password not even checked) while the account is backing off, or Unauthenticated whose
    ``after_rollback`` counts the failure once the request's transaction is rolled back.
    """
    email_n = (email or "").strip().lower()
    fingerprint = _email_fingerprint(email_n, key)
    wait = server_sessions.blocked_for(session, fingerprint)
    if wait:
        user_id = session.scalar(sa.select(User.id).where(User.email == email_n)) if email_n else None
        raise RateLimited(
            _l("Too many failed sign-ins for this account. Try again in %(seconds)s seconds.",
               seconds=wait),
            audit=(
                "auth.login_throttled",
                ("user", user_id) if user_id else None,
                {"login": fingerprint, "retry_after": wait},
            ),
            retry_after=wait,
        )
    try:
        user = authenticate(session, email, password, key=key)
    except Unauthenticated as exc:
        exc.after_rollback = lambda: _count_failure(session, fingerprint, throttle)
        raise
    server_sessions.reset(session, fingerprint)
    return user


def _count_failure(session: Session, fingerprint: str, throttle) -> None:
    server_sessions.record_failure(session, fingerprint, throttle)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(session: Session, user: User, ttl: dt.timedelta, actor: Actor | None = None) -> tuple[str, ApiToken]:
    """Create an API token; the plaintext is returned once and never stored."""
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        token_hash=_token_hash(plaintext),
        prefix=plaintext[:10],
        expires_at=utcnow() + ttl,
    )
    session.add(token)
    session.flush()
    audit.record(
        session,
        "auth.token_issued",
        actor or Actor.from_user(user),
        ("user", user.id),
        {"token_id": token.id, "expires_at": iso(token.expires_at)},
    )
    return plaintext, token


def resolve_token(session: Session, plaintext: str) -> ApiToken | None:
    """The live token for ``plaintext``, or None if unknown, expired or revoked."""
    if not plaintext.startswith(TOKEN_PREFIX):
        return None
    token = session.scalar(sa.select(ApiToken).where(ApiToken.token_hash == _token_hash(plaintext)))
    if token is None or token.revoked_at is not None or token.expires_at <= utcnow():
        return None
    if not token.user.is_active:
        return None
    return token


@dataclass(frozen=True)
class TokenCaller:
    """Who a live token speaks for (``token_caller``): enough for the actor and the locale."""

    token_id: int
    user_id: int
    language: str | None
    actor: Actor


_tokens = ApiToken.__table__
_users = User.__table__
_orgs = Organization.__table__
#: Built once (SQLAlchemy memoizes its cache key): it runs on every token request.
_TOKEN_CALLER = (
    sa.select(
        _tokens.c.id, _tokens.c.expires_at, _tokens.c.revoked_at, _users.c.id, _users.c.is_active,
        _users.c.language, _orgs.c.id, _orgs.c.kind, _orgs.c.status,
    )
    .select_from(
        _tokens.join(_users, _users.c.id == _tokens.c.user_id).join(
            _orgs, _orgs.c.id == _users.c.organization_id
        )
    )
    .where(_tokens.c.token_hash == sa.bindparam("token_hash"))
)


def token_caller(session: Session, plaintext: str) -> TokenCaller | None:
    """:func:`resolve_token`'s decision in one Core statement, without ORM objects: the caller
    of a live token of an active user, or None (unknown, expired, revoked, user deactivated).
    Read from the database on every call, so a revocation takes effect at the next request."""
    if not plaintext.startswith(TOKEN_PREFIX):
        return None
    row = session.connection().execute(
        _TOKEN_CALLER, {"token_hash": _token_hash(plaintext)}
    ).first()
    if row is None:
        return None
    token_id, expires_at, revoked_at, user_id, is_active, language, org_id, kind, status = row
    if revoked_at is not None or expires_at <= utcnow() or not is_active:
        return None
    return TokenCaller(token_id, user_id, language, Actor(user_id, org_id, kind, status))


def revoke_token(session: Session, token: ApiToken, actor: Actor) -> None:
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit.record(session, "auth.token_revoked", actor, ("user", token.user_id), {"token_id": token.id})


LANGUAGES = ("zh", "en")


def set_language(session: Session, actor: Actor, user: User, language: str | None) -> User:
    """Save the language ``user`` chose for pages and messages (None: no choice, follow the
    browser). Only the user themself changes it. Raises Forbidden, ValidationFailed."""
    from flask_babel import gettext as _

    from market.errors import Forbidden

    if actor.user_id != user.id:
        raise Forbidden(_("Only the user themself can choose their language."))
    if language is not None and language not in LANGUAGES:
        message = _("Choose 中文 (zh) or English (en).")
        raise ValidationFailed(message, {"language": [message]})
    if user.language != language:
        before = user.language
        user.language = language
        audit.record(
            session, "accounts.language_changed", actor, ("user", user.id),
            {"from": before, "to": language},
        )
        session.flush()
    return user


def logout(session: Session, user: User) -> None:
    audit.record(session, "auth.logout", Actor.from_user(user), ("user", user.id), {})


def list_organizations(kind: str | None = None, status: str | None = None) -> sa.Select:
    stmt = sa.select(Organization).order_by(Organization.id)
    if kind:
        stmt = stmt.where(Organization.kind == kind)
    if status:
        stmt = stmt.where(Organization.status == status)
    return stmt


def list_users(org_id: int | None = None) -> sa.Select:
    stmt = sa.select(User).order_by(User.id)
    if org_id is not None:
        stmt = stmt.where(User.organization_id == org_id)
    return stmt


SELF_REGISTER_KINDS = ("buyer", "subject")


def register(
    session: Session,
    *,
    organization_name: str,
    credit_code: str,
    kind: str,
    email: str,
    password: str,
) -> tuple[Organization, User]:
    """Self-registration of a buyer (bank, enterprise) or a data subject. The organization
    starts ``pending``: its user can sign in but not apply for licenses or decide consents
    until the operator admits it. Raises ValidationFailed or Conflict."""
    if kind not in SELF_REGISTER_KINDS:
        raise ValidationFailed(
            _("Only buyers and data subjects register themselves."),
            {"kind": [_("Use buyer or subject.")]},
        )
    # Validate the user part first so that a bad e-mail does not leave an orphan organization.
    normalize_email(email)
    _check_password(password)
    anonymous = Actor.system("self-registration")
    org = create_organization(
        session, anonymous, name=organization_name, kind=kind, credit_code=credit_code,
        status=OrgStatus.pending, check=False,
    )
    user = create_user(session, anonymous, email=email, password=password, organization_id=org.id, check=False)
    audit.record(session, "organization.registered", Actor(user.id, org.id, kind, org.status), ("organization", org.id), {"kind": kind})
    return org, user


def decide_admission(session: Session, actor: Actor, org_id: int, *, decision: str, reason: str) -> Organization:
    """Admit or refuse a pending organization (operator). Raises Forbidden, NotFound,
    ValidationFailed, or Conflict if it is not pending."""
    perm.require(perm.can_admit_organization(actor), "Only the operator decides admissions.")
    org = get_organization(session, org_id)
    if decision not in ("admit", "refuse"):
        raise ValidationFailed(_("Unknown decision."), {"decision": [_("Use admit or refuse.")]})
    reason = (reason or "").strip()
    if decision == "refuse" and not reason:
        raise ValidationFailed(
            _("Give the reason for a refusal."), {"reason": [_("Required when refusing.")]}
        )
    if org.status != OrgStatus.pending:
        raise Conflict(_("The organization is %(status)s, not pending.", status=org.status))
    org.status = OrgStatus.active if decision == "admit" else OrgStatus.refused
    audit.record(
        session,
        "organization.admitted" if decision == "admit" else "organization.refused",
        actor,
        ("organization", org.id),
        {"reason": reason},
    )
    session.flush()
    return org
