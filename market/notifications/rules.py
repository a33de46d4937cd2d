"""Which audit events concern whom: audit event type → notification type and recipients.

``market.audit.services.record`` calls :func:`notify_for_event` for every event it appends,
so a notification is written in the transaction of the state change it reports, by the
same call that records the change; a service cannot change state without its audit event,
and so cannot forget to notify. Events of other types cost one dictionary lookup.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import Session

from market.i18n import N_


@dataclass(frozen=True)
class Message:
    """The English text of a notification type (``%(name)s`` from its params)."""

    text: str
    #: ``(endpoint, {url arg: param name})`` of the page it links to.
    link: tuple[str, dict[str, str]] | None = None


_LICENSE_LINK = ("licenses.detail", {"license_id": "license_id"})
_CONSENT_LINK = ("consents.detail", {"consent_id": "consent_id"})
_DATASET_LINK = ("datasets.detail", {"dataset_id": "dataset_id"})

#: Every notification type, its message and its link. Codes are stable (API clients key on
#: them); the text is translated when it is shown.
MESSAGES: dict[str, Message] = {
    "dataset.approved": Message(
        N_("Dataset “%(title)s” (version %(version)s) was approved and listed."), _DATASET_LINK
    ),
    "dataset.rejected": Message(
        N_("Dataset “%(title)s” (version %(version)s) was rejected: %(comment)s"), _DATASET_LINK
    ),
    "license.approved": Message(N_("License %(license_id)s was approved."), _LICENSE_LINK),
    "license.rejected": Message(N_("License %(license_id)s was rejected."), _LICENSE_LINK),
    "license.invoiced": Message(
        N_("Invoice %(invoice_number)s of %(amount)s was issued for license %(license_id)s."),
        _LICENSE_LINK,
    ),
    "license.settled": Message(
        N_("The payment of %(amount)s for license %(license_id)s was settled."), _LICENSE_LINK
    ),
    "license.suspended": Message(N_("License %(license_id)s was suspended."), _LICENSE_LINK),
    "license.reinstated": Message(N_("License %(license_id)s was reinstated."), _LICENSE_LINK),
    "license.revoked": Message(N_("License %(license_id)s was revoked."), _LICENSE_LINK),
    "consent.requested": Message(
        N_("%(buyer)s asks for your consent to read your records (consent %(consent_id)s)."),
        _CONSENT_LINK,
    ),
    "consent.granted": Message(N_("Consent %(consent_id)s was granted."), _CONSENT_LINK),
    "consent.denied": Message(N_("Consent %(consent_id)s was denied."), _CONSENT_LINK),
    "consent.revoked": Message(N_("Consent %(consent_id)s was revoked."), _CONSENT_LINK),
    "revenue.payout": Message(
        N_("A payout of %(amount)s was made to your organization (reference %(reference)s)."),
        ("licenses.revenue", {}),
    ),
}

#: Params holding integer fen, shown as money.
MONEY_PARAMS = frozenset({"amount"})


@dataclass
class Notice:
    type: str
    org_ids: list[int]
    params: dict[str, Any] = field(default_factory=dict)


def _license(session: Session, license_id: Any):
    from licenses.models import License

    return session.get(License, int(license_id)) if license_id is not None else None


def _dataset_reviewed(session: Session, event) -> Notice | None:
    from market.datasets.models import Dataset

    dataset = session.get(Dataset, int(event.subject_id))
    if dataset is None:
        return None
    decision = event.data.get("decision")
    kind = "dataset.approved" if decision == "approve" else "dataset.rejected"
    return Notice(
        kind,
        [dataset.department_id],
        {
            "dataset_id": dataset.id,
            "title": dataset.title,
            "version": event.data.get("version"),
            "comment": event.data.get("comment") or "",
        },
    )


def _license_change(kind: str) -> Callable[[Session, Any], Notice | None]:
    def rule(session: Session, event) -> Notice | None:
        lic = _license(session, event.subject_id)
        if lic is None:
            return None
        return Notice(kind, [lic.buyer_org_id], {"license_id": lic.id})

    return rule


def _payment_created(session: Session, event) -> Notice | None:
    if event.data.get("provider") != "invoice" or not event.data.get("invoice_number"):
        return None
    lic = _license(session, event.data.get("license_id"))
    if lic is None:
        return None
    return Notice(
        "license.invoiced",
        [lic.buyer_org_id],
        {
            "license_id": lic.id,
            "payment_id": int(event.subject_id),
            "invoice_number": event.data["invoice_number"],
            "amount": event.data.get("amount"),
        },
    )


def _payment_settled(session: Session, event) -> Notice | None:
    lic = _license(session, event.data.get("license_id"))
    if lic is None:
        return None
    return Notice(
        "license.settled",
        [lic.buyer_org_id],
        {"license_id": lic.id, "payment_id": int(event.subject_id),
         "amount": event.data.get("amount")},
    )


def _consent_change(kind: str, to: str) -> Callable[[Session, Any], Notice | None]:
    """``to``: ``buyer`` (the bank) or ``subject`` (the enterprise, when registered)."""

    def rule(session: Session, event) -> Notice | None:
        from market.consents.models import Consent

        consent = session.get(Consent, int(event.subject_id))
        if consent is None:
            return None
        org_id = consent.buyer_org_id if to == "buyer" else consent.subject_org_id
        if org_id is None:
            return None
        return Notice(
            kind, [org_id], {"consent_id": consent.id, "license_id": consent.license_id,
                             "buyer": consent.buyer.name}
        )

    return rule


def _payout(session: Session, event) -> Notice | None:
    return Notice(
        "revenue.payout",
        [int(event.subject_id)],
        {"amount": event.data.get("amount"), "reference": event.data.get("reference") or ""},
    )


#: Audit event type → the rule that turns it into a notice (or None: nobody to tell).
RULES: dict[str, Callable[[Session, Any], Notice | None]] = {
    "dataset.reviewed": _dataset_reviewed,
    "license.approved": _license_change("license.approved"),
    "license.rejected": _license_change("license.rejected"),
    "payment.created": _payment_created,
    "payment.settled": _payment_settled,
    "license.suspended": _license_change("license.suspended"),
    "license.reinstated": _license_change("license.reinstated"),
    "license.revoked": _license_change("license.revoked"),
    "consent.requested": _consent_change("consent.requested", "subject"),
    "consent.granted": _consent_change("consent.granted", "buyer"),
    "consent.recorded": _consent_change("consent.granted", "buyer"),
    "consent.denied": _consent_change("consent.denied", "buyer"),
    "consent.revoked": _consent_change("consent.revoked", "buyer"),
    "revenue.payout": _payout,
}


def notify_for_event(session: Session, event) -> int:
    """Write the notifications (and, with ``MARKET_NOTIFY_EMAIL``, the outbox rows) that the
    audit ``event`` calls for, in the caller's transaction; returns how many were written.

    Each active user of each recipient organization gets one row, so reading is per person.
    """
    rule = RULES.get(event.type)
    if rule is None:
        return 0
    notice = rule(session, event)
    if notice is None:
        return 0
    from market.accounts.models import User
    from market.notifications.models import EmailOutbox, Notification

    users = session.execute(
        sa.select(User.id, User.organization_id)
        .where(User.organization_id.in_(notice.org_ids), User.is_active.is_(True))
        .order_by(User.id)
    ).all()
    email = bool(current_app.config.get("MARKET_NOTIFY_EMAIL"))
    rows = []
    for user_id, org_id in users:
        row = Notification(
            recipient_org_id=org_id,
            recipient_user_id=user_id,
            type=notice.type,
            params=notice.params,
            audit_seq=event.seq,
        )
        session.add(row)
        rows.append(row)
    if rows and email:
        session.flush()
        for row in rows:
            session.add(EmailOutbox(notification_id=row.id, user_id=row.recipient_user_id))
    session.flush()
    return len(rows)
