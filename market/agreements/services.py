"""Department authorization agreements (授权运营协议): propose, sign, countersign, expire; the
listing rule; the agreed revenue shares.

**Who signs with which key.** The operator countersigns with the platform's signing key
(:func:`market.keys.signing_key`). A department signs with either

- a key it **registered** (:func:`register_key`: only the public half reaches the platform; the
  department signs the draft's document client-side with ``python -m
  market.agreements.document sign``) — the production path; or
- a **custodial** key the platform derives for it from the platform's own seed (HKDF-SHA256,
  one key per organization, never stored) — the web flow and the demo. The platform could then
  sign on the department's behalf, which is why the bundle says ``key_origin: custodial``.

**The listing rule.** A dataset version is listed only while an *active* agreement of its
department covers it (by dataset id or category) and its term runs
(:func:`require_listing_agreement`, rule code ``no_active_agreement``). When the term ends,
:func:`expire_agreements` (``market agreements expire``) marks the agreement expired and
delists the datasets no other agreement in force covers; active licenses are left alone and run
to their end. The effective status is also computed at read time (:func:`effective_status`).

**Revenue shares.** :func:`fee_shares` gives, per (dataset, department), the operator's fee
share ``1 − revenue_share_bps / 10 000`` from the agreement that applies; a department with no
countersigned agreement falls back to ``MARKET_OPERATOR_FEE_SHARE``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from market.accounts.actor import Actor
from market.accounts.models import Organization, OrgStatus
from market.agreements import document as doc
from market.agreements import permissions as perm
from market.agreements.models import Agreement, AgreementStatus, DepartmentKey, KeyOrigin
from market.audit import services as audit
from market.crypto import key_id, load_public_key, unb64, verify
from market.datasets.models import Dataset, VersionStatus
from market.db import utcnow
from market.errors import Conflict, Forbidden, NotFound, ValidationFailed
from market.keys import signing_key

#: The rule code a refused listing carries in ``errors.rule``.
RULE_NO_AGREEMENT = "no_active_agreement"
#: ``Dataset.status`` of a dataset whose agreement expired (its versions keep their status,
#: so that licenses granted before keep their data).
DELISTED = "delisted"
MAX_CATEGORIES = 50
MAX_DATASETS = 500
MAX_CATEGORY = 64
#: The demo's and the test fixtures' default: the department keeps 90 %.
DEFAULT_REVENUE_SHARE_BPS = 9000
#: A scope category that covers every dataset of the department (全量授权).
ALL_CATEGORIES = "*"


def iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


# ------------------------------------------------------------------------------------ keys


def custodial_key(org_id: int) -> Ed25519PrivateKey:
    """The key the platform derives and holds for department ``org_id`` (web flow, demo)."""
    seed = unb64(current_app.config["MARKET_SIGNING_KEY"])
    derived = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"market-agreements-custodial-v1",
        info=f"department:{org_id}".encode("ascii"),
    ).derive(seed)
    return Ed25519PrivateKey.from_private_bytes(derived)


def register_key(session: Session, actor: Actor, public_key: str) -> DepartmentKey:
    """A department registers the public half of a key it signs agreements with; audited
    ``agreement.key_registered``.

    Raises Forbidden (not an active department), ValidationFailed (not an Ed25519 public key),
    Conflict (already registered).
    """
    if not perm.can_propose(actor):
        raise Forbidden(_("Only a department registers agreement signing keys."))
    try:
        key = load_public_key(public_key.strip())
    except (ValueError, TypeError):
        raise ValidationFailed(
            _("Not an Ed25519 public key."),
            {"public_key": [_("Give the raw 32-byte public key in base64url.")]},
        ) from None
    kid = key_id(key)
    exists = session.scalar(
        sa.select(DepartmentKey.id).where(
            DepartmentKey.organization_id == actor.org_id, DepartmentKey.key_id == kid
        )
    )
    if exists is not None:
        raise Conflict(_("This key is already registered."), {"public_key": [kid]})
    row = DepartmentKey(
        organization_id=actor.org_id,
        key_id=kid,
        public_key=doc.public_key_b64(key),
        registered_by_id=actor.user_id,
        registered_at=utcnow(),
    )
    session.add(row)
    session.flush()
    audit.record(
        session, "agreement.key_registered", actor, ("organization", actor.org_id), {"key_id": kid}
    )
    return row


def department_keys(session: Session, actor: Actor) -> list[DepartmentKey]:
    """The caller's department's registered keys. Raises Forbidden for anyone else."""
    if not perm.can_propose(actor):
        raise Forbidden(_("Only a department has agreement signing keys."))
    return list(
        session.scalars(
            sa.select(DepartmentKey)
            .where(DepartmentKey.organization_id == actor.org_id)
            .order_by(DepartmentKey.id)
        )
    )


MAX_REASON = 1000
#: Rule codes of refusals because of a revoked department key (``errors.rule``).
RULE_KEY_REVOKED = "key_revoked"


def _key_of(session: Session, organization_id: int, kid: str | None) -> DepartmentKey | None:
    if not kid:
        return None
    return session.scalar(
        sa.select(DepartmentKey).where(
            DepartmentKey.organization_id == organization_id, DepartmentKey.key_id == kid
        )
    )


def keys_for(session: Session, actor: Actor, department_id: int | None = None) -> list[DepartmentKey]:
    """Registered keys: a department its own, the operator (and the regulator, read-only) every
    department's or ``department_id``'s. Raises Forbidden for anyone else."""
    stmt = sa.select(DepartmentKey).order_by(DepartmentKey.organization_id, DepartmentKey.id)
    if actor.role == "department" and perm.can_propose(actor):
        stmt = stmt.where(DepartmentKey.organization_id == actor.org_id)
    elif perm.can_list_all(actor):
        if department_id is not None:
            stmt = stmt.where(DepartmentKey.organization_id == department_id)
    else:
        raise Forbidden(_("Only departments, the operator and the regulator see signing keys."))
    return list(session.scalars(stmt))


def revoke_key(
    session: Session,
    actor: Actor,
    key_id_: str,
    *,
    reason: str,
    department_id: int | None = None,
    now: dt.datetime | None = None,
) -> DepartmentKey:
    """Revoke a registered department signing key (lost or stolen): from ``now`` on, no
    signature by it is accepted; agreements it signed before stay valid, and their
    verification states the revocation (:func:`verify_agreement`). A proposal it signed that
    the operator has not countersigned yet can no longer be countersigned. Audited
    ``agreement.key_revoked``.

    Who: the department for its own keys (``department_id`` ignored), the operator for any
    department's (``department_id`` required).

    Raises Forbidden (anyone else), NotFound (no such key of that department, also for another
    department's key), Conflict (already revoked), ValidationFailed (no reason).
    """
    now = now or utcnow()
    if not (perm.can_propose(actor) or perm.can_countersign(actor)):
        raise Forbidden(_("Only the department itself or the operator revokes a signing key."))
    # Whether the key exists (for a department: among its own) comes before the input is
    # read: a caller naming a key it may not revoke learns nothing about the field rules.
    known = sa.select(DepartmentKey.id).where(DepartmentKey.key_id == key_id_)
    if perm.can_propose(actor):
        known = known.where(DepartmentKey.organization_id == actor.org_id)
    if session.scalar(known.limit(1)) is None:
        raise NotFound(_("No such signing key."))
    if perm.can_propose(actor):
        department_id = actor.org_id
    else:
        if department_id is None:
            raise ValidationFailed(
                _("Name the department whose key you revoke."),
                {"department_id": [_("Give the department's id.")]},
            )
    text = (reason or "").strip()
    if not text:
        raise ValidationFailed(_("Give the reason."), {"reason": [_("Give the reason.")]})
    assert department_id is not None
    key = session.scalar(
        sa.select(DepartmentKey)
        .where(DepartmentKey.organization_id == department_id, DepartmentKey.key_id == key_id_)
        .with_for_update(of=DepartmentKey)
    )
    if key is None:
        raise NotFound(_("No such signing key."))
    if key.revoked_at is not None:
        raise Conflict(
            _("This key was already revoked."), {"revoked_at": [iso(key.revoked_at)]}
        )
    key.revoked_at = now
    key.revoked_by_id = actor.user_id
    key.revocation_reason = text[:MAX_REASON]
    session.flush()
    audit.record(
        session, "agreement.key_revoked", actor, ("organization", department_id),
        {"key_id": key.key_id, "revoked_at": iso(now), "reason": text[:MAX_REASON],
         "by": actor.role},
    )
    return key


def _signed_after_revocation(key: DepartmentKey | None, signed_at: dt.datetime | None) -> bool:
    """A signature by a revoked key counts only if the platform recorded it before the
    revocation (a signature it never received could have been made with the stolen key at any
    time)."""
    if key is None or key.revoked_at is None:
        return False
    return signed_at is None or _aware(signed_at) >= _aware(key.revoked_at)


def verify_agreement(session: Session, agreement: Agreement) -> dict[str, Any]:
    """The platform's verification of a stored agreement: both signatures, and the state of a
    registered department key. ``valid`` is False if a signature fails or the department
    signed with a key that was revoked before the platform received the signature; an
    agreement signed before its key was revoked stays valid and says so
    (``department_key.revoked_at``, ``signed_before_revocation``)."""
    dept_ok = False
    if agreement.department_signature and agreement.department_public_key:
        try:
            dept_ok = verify(
                load_public_key(agreement.department_public_key), agreement.document,
                agreement.department_signature,
            )
        except (ValueError, TypeError):
            dept_ok = False
    op_ok = False
    if agreement.operator_signature:
        op_keys = _platform_keys()
        op_key = op_keys.get(agreement.operator_key_id or "")
        op_ok = op_key is not None and verify(
            op_key,
            doc.countersign_payload(agreement.document, agreement.department_signature or ""),
            agreement.operator_signature,
        )
    key_state: dict[str, Any] = {
        "key_id": agreement.department_key_id, "origin": agreement.key_origin,
        "registered": None, "revoked_at": None, "signed_before_revocation": None,
    }
    problems: list[str] = []
    if agreement.key_origin == KeyOrigin.registered and agreement.department_signature:
        key = _key_of(session, agreement.department_id, agreement.department_key_id)
        key_state["registered"] = key is not None and key.public_key == agreement.department_public_key
        if not key_state["registered"]:
            problems.append("key_not_registered")
        elif key is not None and key.revoked_at is not None:
            key_state["revoked_at"] = iso(key.revoked_at)
            after = _signed_after_revocation(key, agreement.signed_at)
            key_state["signed_before_revocation"] = not after
            if after:
                problems.append("signed_after_revocation")
    if not dept_ok:
        problems.append("department_signature")
    if agreement.operator_signature and not op_ok:
        problems.append("operator_signature")
    return {
        "valid": dept_ok and (op_ok or not agreement.operator_signature) and not problems,
        "countersigned": bool(agreement.operator_signature),
        "department_signature": dept_ok,
        "operator_signature": op_ok if agreement.operator_signature else None,
        "department_key": key_state,
        "problems": problems,
    }


def _platform_keys() -> dict[str, Any]:
    from market.keys import public_keys

    return dict(public_keys())


def verify_submitted_bundle(session: Session, bundle_: Mapping[str, Any]) -> dict[str, Any]:
    """Check a downloaded agreement against the platform's record: the signatures (like the
    offline check, :func:`market.agreements.document.verify_bundle`) AND that the platform
    holds exactly this signed agreement, so that a department key's revocation applies. A
    document signed with a revoked (e.g. stolen) key that the platform never recorded before
    the revocation fails. Never raises for malformed input."""
    result = doc.verify_bundle(bundle_, _platform_keys())
    out: dict[str, Any] = {
        "valid": False,
        "department_signature": result.department_signature and result.department_key_id,
        "operator_signature": result.operator_signature,
        "on_record": False,
        "agreement_id": None,
        "number": None,
        "department_key": None,
        "problems": [],
    }
    document = bundle_.get("document") if isinstance(bundle_, Mapping) else None
    dept = bundle_.get("department_signature") if isinstance(bundle_, Mapping) else None
    stored = None
    if isinstance(document, Mapping) and isinstance(dept, Mapping):
        agreement_id = document.get("agreement_id")
        if isinstance(agreement_id, int) and not isinstance(agreement_id, bool):
            stored = session.get(Agreement, agreement_id)
        if stored is not None and not (
            stored.department_signature == dept.get("signature")
            and dict(stored.document) == dict(document)
        ):
            stored = None
    if stored is None:
        out["problems"].append("not_on_record")
        # Still tell about the key, so that a stolen key's forgery is recognisable.
        if isinstance(document, Mapping) and isinstance(dept, Mapping):
            department = document.get("department")
            dept_id = department.get("id") if isinstance(department, Mapping) else None
            if isinstance(dept_id, int):
                key = _key_of(session, dept_id, str(dept.get("key_id") or ""))
                if key is not None:
                    out["department_key"] = {
                        "key_id": key.key_id, "revoked_at": iso(key.revoked_at),
                    }
                    if key.revoked_at is not None:
                        out["problems"].append("signed_after_revocation")
        if not result.ok:
            out["problems"].append("signature")
        return out
    record = verify_agreement(session, stored)
    out.update(
        on_record=True, agreement_id=stored.id, number=stored.number,
        department_key=record["department_key"],
    )
    out["problems"] = list(record["problems"]) + ([] if result.ok else ["signature"])
    out["valid"] = result.ok and record["valid"]
    return out


# -------------------------------------------------------------------------------- reading


def effective_status(agreement: Agreement, now: dt.datetime | None = None) -> str:
    """The status at ``now``: an active agreement past its end is expired even before the
    sweeper has run."""
    now = now or utcnow()
    if agreement.status == AgreementStatus.active and _aware(agreement.ends_at) <= now:
        return AgreementStatus.expired
    return agreement.status


def in_force(agreement: Agreement, now: dt.datetime) -> bool:
    return (
        agreement.status == AgreementStatus.active
        and _aware(agreement.starts_at) <= now < _aware(agreement.ends_at)
    )


def covers(agreement: Agreement, dataset_id: int, category: str, department_id: int) -> bool:
    categories = agreement.categories or []
    return agreement.department_id == department_id and (
        dataset_id in (agreement.dataset_ids or [])
        or category in categories
        or ALL_CATEGORIES in categories
    )


def get_agreement(session: Session, actor: Actor, agreement_id: int) -> Agreement:
    """One agreement, for its department, the operator or the regulator.

    Raises NotFound (no such agreement, or another department's).
    """
    agreement = session.get(Agreement, agreement_id)
    if agreement is None or not perm.can_read(actor, agreement):
        raise NotFound(_("No such agreement."))
    return agreement


def list_agreements(
    session: Session, actor: Actor, *, status: str | None = None
) -> sa.Select[tuple[Agreement]]:
    """A query of the agreements the caller may read: a department its own, the operator and
    the regulator all. ``status`` filters by the stored status. Raises Forbidden for others."""
    stmt = sa.select(Agreement).order_by(Agreement.id.desc())
    if actor.role == "department" and actor.is_user:
        stmt = stmt.where(Agreement.department_id == actor.org_id)
    elif not perm.can_list_all(actor):
        raise Forbidden(_("Only departments, the operator and the regulator see agreements."))
    if status:
        stmt = stmt.where(Agreement.status == status)
    return stmt


def bundle(agreement: Agreement) -> dict[str, Any]:
    """The downloadable signed agreement (see :func:`market.agreements.document.verify_bundle`)."""
    out: dict[str, Any] = {"document": dict(agreement.document), "key_origin": agreement.key_origin}
    out["department_signature"] = (
        {
            "alg": "Ed25519",
            "key_id": agreement.department_key_id,
            "public_key": agreement.department_public_key,
            "signature": agreement.department_signature,
        }
        if agreement.department_signature
        else None
    )
    out["operator_signature"] = (
        {
            "alg": "Ed25519",
            "key_id": agreement.operator_key_id,
            "signature": agreement.operator_signature,
        }
        if agreement.operator_signature
        else None
    )
    return out


# ------------------------------------------------------------------------------- proposing


@dataclass(frozen=True)
class Terms:
    categories: Sequence[str]
    dataset_ids: Sequence[int]
    starts_at: dt.datetime
    ends_at: dt.datetime
    revenue_share_bps: int


def _check_terms(session: Session, department_id: int, terms: Terms, now: dt.datetime) -> Terms:
    errors: dict[str, list[str]] = {}
    categories = sorted({c.strip() for c in terms.categories if c and c.strip()})
    dataset_ids = sorted(set(terms.dataset_ids))
    if not categories and not dataset_ids:
        errors["scope"] = [_("Name at least one category or dataset.")]
    if len(categories) > MAX_CATEGORIES or any(len(c) > MAX_CATEGORY for c in categories):
        errors["categories"] = [
            _("At most %(n)s categories of at most %(m)s characters.", n=MAX_CATEGORIES,
              m=MAX_CATEGORY)
        ]
    if len(dataset_ids) > MAX_DATASETS:
        errors["dataset_ids"] = [_("At most %(n)s datasets.", n=MAX_DATASETS)]
    elif dataset_ids:
        owned = set(
            session.scalars(
                sa.select(Dataset.id).where(
                    Dataset.id.in_(dataset_ids), Dataset.department_id == department_id
                )
            )
        )
        # Another department's dataset is reported like a missing one: ids are not a probe.
        foreign = [i for i in dataset_ids if i not in owned]
        if foreign:
            errors["dataset_ids"] = [
                _("Not datasets of your department: %(ids)s", ids=", ".join(map(str, foreign)))
            ]
    starts, ends = _aware(terms.starts_at), _aware(terms.ends_at)
    if ends <= starts:
        errors["ends_at"] = [_("The term must end after it starts.")]
    elif ends <= now:
        errors["ends_at"] = [_("The term must end in the future.")]
    bps = terms.revenue_share_bps
    if isinstance(bps, bool) or not isinstance(bps, int) or not 0 <= bps <= doc.BPS:
        errors["revenue_share_bps"] = [_("A whole number of basis points from 0 to 10000.")]
    if errors:
        raise ValidationFailed(_("The agreement's terms are not valid."), errors)
    return Terms(categories, dataset_ids, starts, ends, bps)


def _operator(session: Session) -> Organization | None:
    return session.scalar(
        sa.select(Organization)
        .where(Organization.kind == "operator", Organization.status == OrgStatus.active)
        .order_by(Organization.id)
        .limit(1)
    )


def _org_ref(org: Organization | None) -> dict[str, Any] | None:
    if org is None:
        return None
    return {"id": org.id, "name": org.name, "credit_code": org.credit_code}


def _number(session: Session, now: dt.datetime) -> str:
    from licenses.payments import next_sequence

    year = f"{now.year:04d}"
    return f"AGR-{year}-{next_sequence(session, 'AGR', year):06d}"


def build_document(
    agreement: Agreement, department: Organization, operator: Organization | None
) -> dict[str, Any]:
    """The document both parties sign (JSON-native values only)."""
    return {
        "type": doc.DOCUMENT_TYPE,
        "version": doc.DOCUMENT_VERSION,
        "number": agreement.number,
        "agreement_id": agreement.id,
        "department": _org_ref(department),
        "operator": _org_ref(operator),
        "scope": {
            "categories": list(agreement.categories),
            "dataset_ids": list(agreement.dataset_ids),
        },
        "term": {"starts_at": iso(agreement.starts_at), "ends_at": iso(agreement.ends_at)},
        "revenue_share": {
            "department_bps": agreement.revenue_share_bps,
            "operator_bps": doc.BPS - agreement.revenue_share_bps,
        },
        "created_at": iso(agreement.created_at),
    }


def propose(
    session: Session,
    actor: Actor,
    terms: Terms,
    *,
    custodial: bool = True,
    now: dt.datetime | None = None,
) -> Agreement:
    """A department writes an agreement. With ``custodial`` (the web flow) it is signed at once
    with the platform-held key and awaits the operator (``proposed``); otherwise it is a
    ``draft`` the department signs client-side (:func:`sign_registered`). Audited
    ``agreement.proposed`` or ``agreement.drafted``.

    Raises Forbidden (not an active department), ValidationFailed (bad terms).
    """
    if not perm.can_propose(actor):
        raise Forbidden(_("Only a department proposes authorization agreements."))
    now = now or utcnow()
    department = session.get(Organization, actor.org_id)
    assert department is not None
    terms = _check_terms(session, department.id, terms, now)
    agreement = Agreement(
        number=_number(session, now),
        department_id=department.id,
        status=AgreementStatus.draft,
        categories=list(terms.categories),
        dataset_ids=list(terms.dataset_ids),
        starts_at=terms.starts_at,
        ends_at=terms.ends_at,
        revenue_share_bps=terms.revenue_share_bps,
        document={},
        key_origin=KeyOrigin.custodial if custodial else KeyOrigin.registered,
        created_by_id=actor.user_id,
        created_at=now,
    )
    session.add(agreement)
    session.flush()
    agreement.document = build_document(agreement, department, _operator(session))
    session.flush()
    audit.record(
        session,
        "agreement.drafted",
        actor,
        ("agreement", agreement.id),
        {
            "number": agreement.number,
            "categories": agreement.categories,
            "dataset_ids": agreement.dataset_ids,
            "starts_at": iso(agreement.starts_at),
            "ends_at": iso(agreement.ends_at),
            "revenue_share_bps": agreement.revenue_share_bps,
        },
    )
    if custodial:
        key = custodial_key(department.id)
        _department_signed(
            session, actor, agreement, doc.public_key_b64(key.public_key()),
            doc.sign_document(key, agreement.document), now,
        )
    return agreement


def _department_signed(
    session: Session, actor: Actor, agreement: Agreement, public_key: str, signature: str,
    now: dt.datetime,
) -> None:
    agreement.department_public_key = public_key
    agreement.department_key_id = key_id(load_public_key(public_key))
    agreement.department_signature = signature
    agreement.signed_at = now
    agreement.status = AgreementStatus.proposed
    session.flush()
    audit.record(
        session,
        "agreement.proposed",
        actor,
        ("agreement", agreement.id),
        {"number": agreement.number, "key_origin": agreement.key_origin,
         "key_id": agreement.department_key_id},
    )


def sign_registered(
    session: Session, actor: Actor, agreement_id: int, *, key_id_: str, signature: str,
    now: dt.datetime | None = None,
) -> Agreement:
    """The department submits its client-side signature of a draft's document, made with a
    key it registered. Audited ``agreement.proposed``.

    Raises NotFound (not the caller's), Forbidden, Conflict (not a draft), ValidationFailed
    (unknown or revoked key; a signature that does not verify).
    """
    now = now or utcnow()
    agreement = get_agreement(session, actor, agreement_id)
    if not perm.can_sign(actor, agreement):
        raise Forbidden(_("Only the department that wrote the agreement signs it."))
    if agreement.status != AgreementStatus.draft:
        raise Conflict(
            _("Agreement %(n)s is not a draft.", n=agreement.number),
            {"status": [agreement.status]},
        )
    key = session.scalar(
        sa.select(DepartmentKey).where(
            DepartmentKey.organization_id == agreement.department_id,
            DepartmentKey.key_id == key_id_,
            DepartmentKey.revoked_at.is_(None),
        )
    )
    if key is None:
        revoked = _key_of(session, agreement.department_id, key_id_)
        if revoked is not None and revoked.revoked_at is not None:
            raise ValidationFailed(
                _("This signing key was revoked on %(at)s: sign with a valid key.",
                  at=iso(revoked.revoked_at)),
                {"key_id": [_("Revoked key.")], "rule": RULE_KEY_REVOKED},
            )
        raise ValidationFailed(
            _("Unknown signing key."), {"key_id": [_("Register the public key first.")]}
        )
    if not verify(load_public_key(key.public_key), agreement.document, signature):
        raise ValidationFailed(
            _("The signature does not verify."),
            {"signature": [_("Sign the canonical JSON of the draft's document.")]},
        )
    _department_signed(session, actor, agreement, key.public_key, signature, now)
    return agreement


# ----------------------------------------------------------------------------- countersigning


def _proposed(session: Session, actor: Actor, agreement_id: int) -> Agreement:
    if not perm.can_countersign(actor):
        raise Forbidden(_("Only the operator countersigns agreements."))
    agreement = session.scalar(
        sa.select(Agreement).where(Agreement.id == agreement_id).with_for_update(of=Agreement)
    )
    if agreement is None:
        raise NotFound(_("No such agreement."))
    if agreement.status != AgreementStatus.proposed:
        raise Conflict(
            _("Agreement %(n)s is %(status)s, not awaiting the operator.", n=agreement.number,
              status=agreement.status),
            {"status": [agreement.status]},
        )
    return agreement


def countersign(
    session: Session, actor: Actor, agreement_id: int, *, now: dt.datetime | None = None
) -> Agreement:
    """The operator countersigns with the platform's key: the agreement is ``active``; datasets
    delisted for lack of an agreement that it covers are listed again. Audited
    ``agreement.countersigned`` (and ``dataset.relisted``).

    Raises Forbidden (not the operator), NotFound, Conflict (not proposed; term already over;
    the department's signature no longer verifies).
    """
    now = now or utcnow()
    agreement = _proposed(session, actor, agreement_id)
    if _aware(agreement.ends_at) <= now:
        raise Conflict(_("The agreement's term is already over."), {"ends_at": [iso(agreement.ends_at)]})
    department_key = load_public_key(agreement.department_public_key or "")
    if not verify(department_key, agreement.document, agreement.department_signature or ""):
        raise Conflict(_("The department's signature does not verify."))
    if agreement.key_origin == KeyOrigin.registered:
        registered = _key_of(session, agreement.department_id, agreement.department_key_id)
        if registered is None or registered.revoked_at is not None:
            # Revoked after it signed: the key may have been stolen before anyone noticed, so
            # the operator does not put its name under it; the department proposes again.
            raise Conflict(
                _("The department's signing key was revoked: it must propose the agreement "
                  "again with a valid key."),
                {"rule": RULE_KEY_REVOKED},
            )
    key = signing_key()
    agreement.operator_signature = doc.countersign(
        key.private, agreement.document, agreement.department_signature or ""
    )
    agreement.operator_key_id = key.id
    agreement.countersigned_by_id = actor.user_id
    agreement.countersigned_at = now
    agreement.status = AgreementStatus.active
    session.flush()
    audit.record(
        session,
        "agreement.countersigned",
        actor,
        ("agreement", agreement.id),
        {"number": agreement.number, "key_id": key.id,
         "revenue_share_bps": agreement.revenue_share_bps},
    )
    if in_force(agreement, now):
        _relist(session, actor, agreement, now)
    return agreement


def decline(
    session: Session, actor: Actor, agreement_id: int, reason: str, *,
    now: dt.datetime | None = None,
) -> Agreement:
    """The operator declines a proposed agreement. Audited ``agreement.declined``.

    Raises Forbidden, NotFound, Conflict (not proposed), ValidationFailed (no reason).
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(_("Give the reason."), {"reason": [_("Give the reason.")]})
    agreement = _proposed(session, actor, agreement_id)
    agreement.status = AgreementStatus.declined
    session.flush()
    audit.record(
        session, "agreement.declined", actor, ("agreement", agreement.id),
        {"number": agreement.number, "reason": reason[:1000]},
    )
    return agreement


# --------------------------------------------------------------------------- listing rule


def active_agreements(session: Session, department_id: int, now: dt.datetime) -> list[Agreement]:
    return [
        a
        for a in session.scalars(
            sa.select(Agreement).where(
                Agreement.department_id == department_id,
                Agreement.status == AgreementStatus.active,
                Agreement.starts_at <= now,
                Agreement.ends_at > now,
            ).order_by(Agreement.id)
        )
    ]


def covering_agreement(
    session: Session, dataset: Dataset, now: dt.datetime | None = None
) -> Agreement | None:
    """The department's agreement in force at ``now`` that covers ``dataset``, if any."""
    now = now or utcnow()
    for agreement in active_agreements(session, dataset.department_id, now):
        if covers(agreement, dataset.id, dataset.category, dataset.department_id):
            return agreement
    return None


def require_listing_agreement(
    session: Session, dataset: Dataset, now: dt.datetime | None = None
) -> Agreement:
    """The agreement that allows listing ``dataset`` now.

    Raises Conflict with ``errors.rule = "no_active_agreement"`` if none covers it.
    """
    agreement = covering_agreement(session, dataset, now)
    if agreement is None:
        raise Conflict(
            _(
                "Dataset %(id)s cannot be listed: no active authorization agreement of its department covers it.",
                id=dataset.id,
            ),
            {"rule": RULE_NO_AGREEMENT},
        )
    return agreement


def _covered_datasets(session: Session, agreement: Agreement) -> list[Dataset]:
    conds = []
    if agreement.dataset_ids:
        conds.append(Dataset.id.in_(agreement.dataset_ids))
    if ALL_CATEGORIES in (agreement.categories or []):
        conds.append(sa.true())
    elif agreement.categories:
        conds.append(Dataset.category.in_(agreement.categories))
    if not conds:
        return []
    return list(
        session.scalars(
            sa.select(Dataset)
            .where(Dataset.department_id == agreement.department_id, sa.or_(*conds))
            .order_by(Dataset.id)
        )
    )


def _relist(session: Session, actor: Actor, agreement: Agreement, now: dt.datetime) -> None:
    for dataset in _covered_datasets(session, agreement):
        if dataset.status == DELISTED and any(
            v.status == VersionStatus.listed for v in dataset.versions
        ):
            dataset.status = VersionStatus.listed
            session.flush()
            audit.record(
                session, "dataset.relisted", actor, ("dataset", dataset.id),
                {"agreement": agreement.number},
            )


def due_agreement_ids(session: Session, now: dt.datetime) -> list[int]:
    """Active agreements whose term has ended (the sweeper's work list)."""
    return list(
        session.scalars(
            sa.select(Agreement.id)
            .where(Agreement.status == AgreementStatus.active, Agreement.ends_at <= now)
            .order_by(Agreement.id)
        )
    )


def expire_agreement(
    session: Session, actor: Actor, agreement_id: int, now: dt.datetime
) -> Agreement | None:
    """Expire one agreement whose term has ended and delist the datasets it covered that no
    other agreement in force covers. Audited ``agreement.expired`` and ``dataset.delisted``.

    The agreement is claimed with one conditional ``UPDATE … WHERE status = 'active' AND
    ends_at <= now``: of several sweepers running at once (processes, threads) exactly one
    gets the row (PostgreSQL re-checks the condition after the winner commits; SQLite
    serializes writers with ``BEGIN IMMEDIATE``); the others get None and write nothing.
    """
    taken = session.execute(
        sa.update(Agreement)
        .where(
            Agreement.id == agreement_id,
            Agreement.status == AgreementStatus.active,
            Agreement.ends_at <= now,
        )
        .values(status=AgreementStatus.expired.value, expired_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if taken != 1:
        return None
    agreement = session.get(Agreement, agreement_id)
    assert agreement is not None
    session.refresh(agreement)
    delisted = []
    for dataset in _covered_datasets(session, agreement):
        if dataset.status != VersionStatus.listed:
            continue
        if covering_agreement(session, dataset, now) is not None:
            continue
        dataset.status = DELISTED
        delisted.append(dataset.id)
        session.flush()
        audit.record(
            session, "dataset.delisted", actor, ("dataset", dataset.id),
            {"agreement": agreement.number, "reason": "agreement_expired"},
        )
    audit.record(
        session, "agreement.expired", actor, ("agreement", agreement.id),
        {"number": agreement.number, "delisted": delisted},
    )
    return agreement


def expire_agreements(
    session: Session, actor: Actor, now: dt.datetime | None = None
) -> list[Agreement]:
    """Mark active agreements whose term has ended ``expired`` and delist the datasets they
    covered that no other agreement in force covers (:func:`expire_agreement`), in the caller's
    transaction. Licenses already granted are left alone: they run to their own end.
    Returns the agreements expired now (idempotent: a second run expires nothing)."""
    now = now or utcnow()
    done = []
    for agreement_id in due_agreement_ids(session, now):
        agreement = expire_agreement(session, actor, agreement_id, now)
        if agreement is not None:
            done.append(agreement)
    return done


def lapsed_dataset_ids(
    session: Session, now: dt.datetime | None = None, *, department_id: int | None = None
) -> set[int]:
    """Listed datasets whose covering agreement has ended although the sweeper has not run
    yet: every read of the catalogue treats them as delisted already (read-time expiry).

    Cheap when nothing is due (one indexed query): the sweeper runs at every web process's
    first request and on a timer (:mod:`market.agreements.sweeper`), so the list is short.
    """
    now = now or utcnow()
    stmt = sa.select(Agreement).where(
        Agreement.status == AgreementStatus.active, Agreement.ends_at <= now
    )
    if department_id is not None:
        stmt = stmt.where(Agreement.department_id == department_id)
    ended = list(session.scalars(stmt.order_by(Agreement.id)))
    out: set[int] = set()
    for agreement in ended:
        for dataset in _covered_datasets(session, agreement):
            if (
                dataset.status == VersionStatus.listed
                and dataset.id not in out
                and covering_agreement(session, dataset, now) is None
            ):
                out.add(dataset.id)
    return out


def is_lapsed(session: Session, dataset: Dataset, now: dt.datetime | None = None) -> bool:
    """Whether ``dataset`` is listed but its covering agreement has ended (see
    :func:`lapsed_dataset_ids`)."""
    if dataset.status != VersionStatus.listed:
        return False
    return dataset.id in lapsed_dataset_ids(session, now, department_id=dataset.department_id)


# --------------------------------------------------------------------------- revenue shares


@dataclass(frozen=True)
class AgreedRate:
    """What one countersigned agreement says about revenue, for in-memory lookups."""

    department_id: int
    categories: frozenset[str]
    dataset_ids: frozenset[int]
    starts_at: dt.datetime
    ends_at: dt.datetime
    countersigned_at: dt.datetime
    revenue_share_bps: int

    def covers(self, dataset_id: int, category: str) -> bool:
        return (
            dataset_id in self.dataset_ids
            or category in self.categories
            or ALL_CATEGORIES in self.categories
        )

    def in_force(self, at: dt.datetime) -> bool:
        return self.starts_at <= at < self.ends_at


def agreed_rates(session: Session, department_ids: Iterable[int]) -> list[AgreedRate]:
    """Every countersigned (active or expired) agreement of these departments."""
    ids = sorted(set(department_ids))
    if not ids:
        return []
    rows = session.scalars(
        sa.select(Agreement).where(
            Agreement.department_id.in_(ids),
            Agreement.status.in_([AgreementStatus.active, AgreementStatus.expired]),
        )
    )
    return [
        AgreedRate(
            a.department_id,
            frozenset(a.categories or []),
            frozenset(a.dataset_ids or []),
            _aware(a.starts_at),
            _aware(a.ends_at),
            _aware(a.countersigned_at or a.created_at),
            a.revenue_share_bps,
        )
        for a in rows
    ]


def operator_share_at(
    rates: Sequence[AgreedRate],
    department_id: int,
    dataset_id: int,
    category: str,
    at: dt.datetime,
    default: Fraction,
) -> Fraction:
    """The operator's fee share of a payment for ``department_id``'s part of ``dataset_id`` at
    ``at``. The agreement that applies, in order: one covering the dataset and in force at
    ``at`` (the latest countersigned); else the covering one that ended last before ``at``
    (a license granted under it runs to its end); else one of the department in force at ``at``
    whatever its scope (a contributing department); else ``default``."""
    mine = [r for r in rates if r.department_id == department_id]
    covering = [r for r in mine if r.covers(dataset_id, category)]
    chosen = max(
        (r for r in covering if r.in_force(at)), key=lambda r: r.countersigned_at, default=None
    )
    if chosen is None:
        chosen = max(
            (r for r in covering if r.ends_at <= at), key=lambda r: r.ends_at, default=None
        )
    if chosen is None:
        chosen = max(
            (r for r in mine if r.in_force(at)), key=lambda r: r.countersigned_at, default=None
        )
    if chosen is None:
        return default
    return Fraction(doc.BPS - chosen.revenue_share_bps, doc.BPS)


def fee_shares(
    session: Session,
    parts: Iterable[tuple[int, str, int]],
    at: dt.datetime,
    default: Fraction,
) -> dict[tuple[int, int], Fraction]:
    """``{(dataset_id, department_id): operator fee share}`` for ``(dataset_id, category,
    department_id)`` parts, at ``at`` (see :func:`operator_share_at`)."""
    parts = list(parts)
    rates = agreed_rates(session, (d for _, _, d in parts))
    return {
        (ds, dept): operator_share_at(rates, dept, ds, cat, _aware(at), default)
        for ds, cat, dept in parts
    }


# ------------------------------------------------------------------------------------- demo


def seed_default_agreement(
    session: Session,
    department: Organization,
    *,
    categories: Sequence[str] = (),
    dataset_ids: Sequence[int] = (),
    revenue_share_bps: int = DEFAULT_REVENUE_SHARE_BPS,
    starts_at: dt.datetime | None = None,
    years: int = 3,
    now: dt.datetime | None = None,
) -> Agreement:
    """An active agreement for ``department`` signed with its custodial key and countersigned
    with the platform key, written by the system (the demo seed; test fixtures). With no
    scope given, it covers every category the department has datasets in plus ``dataset_ids``;
    a department with no dataset yet gets the catch-all scope of its existing categories only,
    so callers that create datasets later pass ``categories``."""
    now = now or utcnow()
    system = Actor.system("demo")
    if not categories and not dataset_ids:
        categories = [ALL_CATEGORIES]
    starts = starts_at or now - dt.timedelta(days=1)
    agreement = Agreement(
        number=_number(session, now),
        department_id=department.id,
        status=AgreementStatus.draft,
        categories=sorted(set(categories)),
        dataset_ids=sorted(set(dataset_ids)),
        starts_at=starts,
        ends_at=starts + dt.timedelta(days=365 * years),
        revenue_share_bps=revenue_share_bps,
        document={},
        key_origin=KeyOrigin.custodial,
        created_at=now,
    )
    session.add(agreement)
    session.flush()
    agreement.document = build_document(agreement, department, _operator(session))
    key = custodial_key(department.id)
    agreement.department_public_key = doc.public_key_b64(key.public_key())
    agreement.department_key_id = key_id(key.public_key())
    agreement.department_signature = doc.sign_document(key, agreement.document)
    agreement.signed_at = now
    platform = signing_key()
    agreement.operator_signature = doc.countersign(
        platform.private, agreement.document, agreement.department_signature
    )
    agreement.operator_key_id = platform.id
    agreement.countersigned_at = now
    agreement.status = AgreementStatus.active
    session.flush()
    audit.record(
        session, "agreement.countersigned", system, ("agreement", agreement.id),
        {"number": agreement.number, "key_id": platform.id,
         "revenue_share_bps": revenue_share_bps, "seeded": True},
    )
    return agreement


def summary(agreement: Agreement, now: dt.datetime | None = None) -> dict[str, Any]:
    """The API shape (API.md: department, scope, starts_at, ends_at, revenue_share, status,
    signatures)."""
    return {
        "id": agreement.id,
        "number": agreement.number,
        "department": _org_ref(agreement.department),
        "scope": {"categories": list(agreement.categories or []),
                  "dataset_ids": list(agreement.dataset_ids or [])},
        "starts_at": iso(agreement.starts_at),
        "ends_at": iso(agreement.ends_at),
        "revenue_share_bps": agreement.revenue_share_bps,
        "revenue_share": {
            "department_bps": agreement.revenue_share_bps,
            "operator_bps": doc.BPS - agreement.revenue_share_bps,
        },
        "status": effective_status(agreement, now),
        "key_origin": agreement.key_origin,
        "signatures": {
            "department": {"key_id": agreement.department_key_id,
                           "signed_at": iso(agreement.signed_at)}
            if agreement.department_signature else None,
            "operator": {"key_id": agreement.operator_key_id,
                         "signed_at": iso(agreement.countersigned_at)}
            if agreement.operator_signature else None,
        },
        "document": dict(agreement.document),
    }


def departments_with(session: Session, ids: Iterable[int]) -> Mapping[int, Organization]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {o.id: o for o in session.scalars(sa.select(Organization).where(Organization.id.in_(wanted)))}
