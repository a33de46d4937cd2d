"""Audit events for people: a sentence (who did what to which object), a link to the object
and the details as a labelled list, in the reader's language.

The stored event (codes, ids, JSON) is never changed: this only reads it. Names of objects
(datasets, organizations) are looked up in one query per kind for a whole page of events.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from market.audit.models import AuditEvent
from market.web.labels import name as code_name

#: Names of the keys found in events' ``data`` (unknown keys are shown as the code).
DATA_KEYS: Mapping[str, object] = {
    "amount": _l("Amount"),
    "bank_reference": _l("Bank reference"),
    "buyer_org_id": _l("Buyer"),
    "departments": _l("Departments"),
    "ends_at": _l("Ends"),
    "expires_at": _l("Expires"),
    "issued_at": _l("Issued"),
    "key_id": _l("Signing key"),
    "organization_id": _l("Organization"),
    "operator_fee": _l("Operator fee"),
    "params_version": _l("Pricing parameters version"),
    "starts_at": _l("Starts"),
    "subject_org_id": _l("Data subject"),
    "subject_ref": _l("Subject reference"),
    "valid_until": _l("Valid until"),
    "journal_id": _l("Ledger journal"),
    "change_request": _l("Change request"),
    "active_licenses": _l("Active licenses"),
    "previous_status": _l("Previous status"),
    "before": _l("Before"),
    "after": _l("After"),
    "category": _l("Category"),
    "changed": _l("Changed"),
    "changes": _l("Changes"),
    "columns": _l("Columns"),
    "comment": _l("Comment"),
    "confidential": _l("Confidential"),
    "dataset_id": _l("Dataset"),
    "datasets": _l("Datasets"),
    "decision": _l("Decision"),
    "duration_months": _l("Term (months)"),
    "epsilon": _l("Privacy budget spent (ε)"),
    "events": _l("Events"),
    "head": _l("Head hash"),
    "license_id": _l("License"),
    "method": _l("Method"),
    "open_grade": _l("Open grade"),
    "path": _l("Path"),
    "payment_id": _l("Payment"),
    "price": _l("Price"),
    "purpose": _l("Purpose"),
    "quality_score": _l("Quality score"),
    "query_id": _l("Query"),
    "query_quota": _l("Query quota"),
    "quote_id": _l("Quote"),
    "reason": _l("Reason"),
    "reasons": _l("Reasons"),
    "reference": _l("Reference"),
    "review": _l("Goes back to review"),
    "role": _l("Role"),
    "rule": _l("Rule"),
    "security_level": _l("Security level"),
    "size_bytes": _l("Size (bytes)"),
    "sql": _l("SQL"),
    "sql_hash": _l("SQL fingerprint"),
    "status": _l("Status"),
    "superseded": _l("Superseded version"),
    "suppressed": _l("Suppressed columns"),
    "title": _l("Title"),
    "total": _l("Total"),
    "valid": _l("Valid"),
    "version": _l("Version"),
}

#: Keys whose value is an organization id.
ORG_KEYS = frozenset({"buyer_org_id", "subject_org_id", "organization_id"})

#: Keys whose value is an amount in fen.
MONEY_KEYS = frozenset({"amount", "price", "total", "subtotal", "operator_fee"})

#: Names of the kinds of object an event is about.
SUBJECT_KINDS: Mapping[str, object] = {
    "consent": _l("consent"),
    "dataset": _l("dataset"),
    "license": _l("license"),
    "organization": _l("organization"),
    "payment": _l("payment"),
    "pricing_parameters": _l("pricing parameters"),
    "pricing_proposal": _l("pricing proposal"),
    "quote": _l("quote"),
    "refund": _l("refund"),
    "registration_certificate": _l("registration certificate"),
    "user": _l("user"),
}

#: Pages of an object: subject type → (endpoint, the endpoint's id argument).
SUBJECT_PAGES: Mapping[str, tuple[str, str]] = {
    "dataset": ("datasets.detail", "dataset_id"),
    "license": ("licenses.detail", "license_id"),
    "consent": ("consents.detail", "consent_id"),
    "quote": ("quotes.detail", "quote_id"),
}

ROLES: Mapping[str, object] = {
    "department": _l("department"),
    "buyer": _l("buyer"),
    "operator": _l("operator"),
    "regulator": _l("regulator"),
    "subject": _l("data subject"),
}


_ISO_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


@dataclass
class Detail:
    key: str
    label: str
    #: "text", "sql", "money", "json" or "list": how the template shows ``value``.
    kind: str
    value: Any


@dataclass
class Described:
    seq: int
    type: str
    action: str
    actor: str
    subject_text: str | None
    subject_url: str | None
    details: list[Detail] = field(default_factory=list)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class Names:
    """Names of the organizations and datasets a set of events mentions (one query each)."""

    def __init__(self, session: Session, events: Iterable[AuditEvent]) -> None:
        from market.accounts.models import Organization
        from market.datasets.models import Dataset

        events = list(events)
        org_ids = {e.actor_org_id for e in events if e.actor_org_id is not None}
        org_ids |= {
            i for e in events if e.subject_type == "organization"
            if (i := _int(e.subject_id)) is not None
        }
        org_ids |= {
            i for e in events for k in ORG_KEYS
            if (i := _int((e.data or {}).get(k))) is not None
        }
        dataset_ids = {
            i for e in events if e.subject_type == "dataset"
            if (i := _int(e.subject_id)) is not None
        }
        dataset_ids |= {
            i for e in events if (i := _int((e.data or {}).get("dataset_id"))) is not None
        }
        self.orgs: dict[int, str] = dict(
            session.execute(
                sa.select(Organization.id, Organization.name).where(Organization.id.in_(org_ids))
            ).all()
        ) if org_ids else {}
        self.datasets: dict[int, str] = dict(
            session.execute(
                sa.select(Dataset.id, Dataset.title).where(Dataset.id.in_(dataset_ids))
            ).all()
        ) if dataset_ids else {}


def actor_text(event: AuditEvent, names: Names) -> str:
    actor = event.actor or {}
    if "system" in actor:
        return _("The system (%(via)s)", via=actor["system"])
    role = ROLES.get(str(actor.get("role")), actor.get("role") or "")
    if event.actor_org_id is not None:
        org = names.orgs.get(event.actor_org_id, f"#{event.actor_org_id}")
        if event.actor_user_id is not None:
            return _("%(org)s (%(role)s, user %(user)s)", org=org, role=role,
                     user=event.actor_user_id)
        return _("%(org)s (%(role)s)", org=org, role=role)
    return _("An anonymous visitor")


def subject_text(event: AuditEvent, names: Names) -> str | None:
    if not event.subject_type:
        return None
    kind = str(SUBJECT_KINDS.get(event.subject_type, event.subject_type))
    ident = _int(event.subject_id)
    if event.subject_type == "dataset" and ident in names.datasets:
        return _("%(kind)s “%(name)s” (#%(id)s)", kind=kind, name=names.datasets[ident], id=ident)
    if event.subject_type == "organization" and ident in names.orgs:
        return _("%(kind)s “%(name)s” (#%(id)s)", kind=kind, name=names.orgs[ident], id=ident)
    return _("%(kind)s #%(id)s", kind=kind, id=event.subject_id)


def subject_url(event: AuditEvent) -> str | None:
    page = SUBJECT_PAGES.get(event.subject_type or "")
    ident = _int(event.subject_id)
    if page is None or ident is None:
        return None
    try:
        return url_for(page[0], **{page[1]: ident})
    except Exception:  # noqa: BLE001 - the page's module is not registered in this app
        return None


def _detail(key: str, value: Any, names: Names) -> Detail:
    label = str(DATA_KEYS.get(key, key))
    if key == "sql" and isinstance(value, str):
        return Detail(key, label, "sql", value)
    if key in MONEY_KEYS and isinstance(value, int) and not isinstance(value, bool):
        return Detail(key, label, "money", value)
    if key == "dataset_id" and _int(value) in names.datasets:
        return Detail(key, label, "text", f"{names.datasets[_int(value)]} (#{value})")
    if key in ORG_KEYS and _int(value) in names.orgs:
        return Detail(key, label, "text", f"{names.orgs[_int(value)]} (#{value})")
    if isinstance(value, str) and _ISO_INSTANT.match(value):
        from market.web import local_time

        try:
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return Detail(key, label, "text", value)
        return Detail(key, label, "text", local_time(moment, "%Y-%m-%d %H:%M:%S"))
    if key in ("category",) and isinstance(value, str):
        return Detail(key, label, "text", code_name("category", value))
    if isinstance(value, bool):
        return Detail(key, label, "text", _("yes") if value else _("no"))
    if value is None or value == "" or value == [] or value == {}:
        return Detail(key, label, "text", "—")
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return Detail(key, label, "list", [str(v) for v in value])
    if isinstance(value, dict | list):
        # Readable JSON: Chinese stays Chinese, never \uXXXX escapes.
        return Detail(key, label, "json", json.dumps(value, ensure_ascii=False, indent=1,
                                                     sort_keys=True))
    return Detail(key, label, "text", str(value))


def describe(event: AuditEvent, names: Names) -> Described:
    data = event.data or {}
    return Described(
        seq=event.seq,
        type=event.type,
        action=code_name("event", event.type),
        actor=actor_text(event, names),
        subject_text=subject_text(event, names),
        subject_url=subject_url(event),
        details=[_detail(k, data[k], names) for k in sorted(data)],
    )


def describe_all(session: Session, events: Iterable[AuditEvent]) -> list[Described]:
    events = list(events)
    names = Names(session, events)
    return [describe(e, names) for e in events]


AREAS: Mapping[str, object] = {
    "access": _l("Access"),
    "audit": _l("Audit"),
    "auth": _l("Sign-in"),
    "blacklist": _l("Blacklist"),
    "consent": _l("Consents"),
    "dataset": _l("Datasets"),
    "license": _l("Licenses"),
    "lists": _l("Red and black lists"),
    "lookup": _l("Lookups"),
    "organization": _l("Organizations"),
    "payment": _l("Payments"),
    "pricing": _l("Pricing"),
    "quote": _l("Quotes"),
    "refund": _l("Refunds"),
    "revenue": _l("Revenue"),
    "sandbox": _l("Sandbox"),
    "user": _l("Users"),
    "welfare_body": _l("Public-welfare bodies"),
}


def type_choices(session: Session) -> list[tuple[str, list[tuple[str, str]]]]:
    """The event-type select: ``[(area name, [(value, name)])]``; each area starts with "every
    event of it" (the prefix, which the filter matches as ``area.*``), then its types by name."""
    from market.web.labels import EVENT_TYPES

    stored = set(session.scalars(sa.select(AuditEvent.type).distinct()))
    areas: dict[str, list[tuple[str, str]]] = {}
    for code in stored | set(EVENT_TYPES):
        area = code.split(".", 1)[0]
        areas.setdefault(area, []).append((code, code_name("event", code)))
    out = []
    for area in sorted(areas):
        area_name = str(AREAS.get(area, area))
        types = sorted(areas[area], key=lambda t: t[1])
        out.append((area_name, [(area, _("Every event: %(area)s", area=area_name)), *types]))
    return out
