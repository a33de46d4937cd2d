"""Load and dump schemas of the consents API (separate, explicit)."""

from __future__ import annotations

import datetime as dt

import marshmallow as ma

from market.accounts.schemas import OrganizationBriefSchema
from market.consents.models import ConsentStatus
from market.db import utcnow
from market.web import validators as mv

# -- loading -----------------------------------------------------------------------------


class ConsentCreateSchema(ma.Schema):
    license_id = ma.fields.Integer(required=True, strict=True)
    subject_credit_code = ma.fields.String(
        required=True,
        validate=mv.Length(min=1, max=64),
        metadata={"description": "The enterprise's Unified Social Credit Code (18 characters)."},
    )
    purpose = ma.fields.String(required=True, validate=mv.Length(max=2000))
    valid_until = ma.fields.AwareDateTime(
        required=True,
        default_timezone=dt.UTC,
        metadata={
            "description": "ISO 8601; in the future and no later than the license's end. "
            "Without a time zone it is read as UTC."
        },
    )


class ConsentDecisionSchema(ma.Schema):
    decision = ma.fields.String(required=True, validate=mv.OneOf(["grant", "deny"]))


class ConsentRecordSchema(ma.Schema):
    authorization_reference = ma.fields.String(
        required=True,
        validate=mv.Length(min=1, max=200),
        metadata={"description": "The reference of the paper authorization letter (授权书)."},
    )


class ConsentListArgs(ma.Schema):
    page = ma.fields.Integer(load_default=1, validate=mv.Range(min=1))
    per_page = ma.fields.Integer(load_default=20, validate=mv.Range(min=1, max=100))
    status = ma.fields.String(validate=mv.OneOf([s.value for s in ConsentStatus]))


class LookupCreateSchema(ma.Schema):
    license_id = ma.fields.Integer(required=True, strict=True)
    subject_credit_code = ma.fields.String(required=True, validate=mv.Length(min=1, max=64))


# -- dumping -----------------------------------------------------------------------------


class ConsentSubjectSchema(ma.Schema):
    credit_code = ma.fields.String()
    name = ma.fields.String(
        allow_none=True,
        metadata={"description": "Shown once the enterprise itself granted or decided."},
    )


def consent_subject(consent) -> dict:
    # The bank learns that the enterprise is registered only from the enterprise's own answer.
    org = consent.subject_org
    disclosed = org is not None and consent.decided_by_id is not None
    return {"credit_code": consent.subject_credit_code, "name": org.name if disclosed else None}


class ConsentSchema(ma.Schema):
    id = ma.fields.Integer()
    status = ma.fields.Method(
        "get_status",
        metadata={"description": "requested, granted, denied, revoked or expired"},
    )
    license_id = ma.fields.Integer()
    buyer = ma.fields.Nested(OrganizationBriefSchema)
    subject = ma.fields.Function(consent_subject, metadata={"description": "The enterprise."})
    purpose = ma.fields.String()
    valid_until = ma.fields.DateTime()
    via = ma.fields.Method(
        "get_via", metadata={"description": "'platform', or 'paper' for a recorded letter"}
    )
    authorization_reference = ma.fields.String(allow_none=True)
    decided_at = ma.fields.DateTime(allow_none=True)
    revoked_at = ma.fields.DateTime(allow_none=True)
    created_at = ma.fields.DateTime()

    def get_status(self, obj) -> str:
        return obj.status_at(utcnow())

    def get_via(self, obj) -> str | None:
        if obj.authorization_reference:
            return "paper"
        return "platform" if obj.decided_at is not None else None


class LookupTableSchema(ma.Schema):
    slug = ma.fields.String()
    dataset_id = ma.fields.Integer()
    title = ma.fields.String()
    columns = ma.fields.List(ma.fields.String(), metadata={"description": "In display order."})
    omitted_columns = ma.fields.List(
        ma.fields.String(),
        metadata={"description": "Licensed pseudonymized identifiers, never returned."},
    )
    row_count = ma.fields.Function(lambda t: len(t.rows))
    truncated = ma.fields.Boolean(metadata={"description": "More rows than row_limit exist."})


class UnavailableTableSchema(ma.Schema):
    slug = ma.fields.String()
    dataset_id = ma.fields.Integer()
    reason = ma.fields.String()


class LookupResultSchema(ma.Schema):
    id = ma.fields.Function(lambda r: r.lookup.id)
    consent_id = ma.fields.Function(lambda r: r.consent.id)
    subject = ma.fields.Function(
        lambda r: {"credit_code": r.subject_credit_code, "name": r.subject_name}
    )
    records = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.List(ma.fields.Dict()),
        metadata={"description": "Per table slug, the enterprise's rows (licensed columns)."},
    )
    tables = ma.fields.List(ma.fields.Nested(LookupTableSchema))
    unavailable = ma.fields.List(ma.fields.Nested(UnavailableTableSchema))
    row_limit = ma.fields.Integer(metadata={"description": "Rows returned per table at most."})
    quota_remaining = ma.fields.Integer()
    performed_at = ma.fields.DateTime()


class LookupLogSchema(ma.Schema):
    id = ma.fields.Integer()
    consent_id = ma.fields.Integer()
    license_id = ma.fields.Integer()
    subject_credit_code = ma.fields.Function(lambda e: e.consent.subject_credit_code)
    tables = ma.fields.List(ma.fields.String())
    row_counts = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())
    created_at = ma.fields.DateTime()


class AccessEntrySchema(ma.Schema):
    at = ma.fields.DateTime()
    type = ma.fields.String(
        metadata={
            "description": "consent.requested|granted|denied|recorded|revoked, lookup.performed"
        }
    )
    consent_id = ma.fields.Integer()
    license_id = ma.fields.Integer()
    bank = ma.fields.Nested(OrganizationBriefSchema)
    actor_role = ma.fields.String(allow_none=True)
    tables = ma.fields.List(ma.fields.String())
    row_counts = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())
    authorization_reference = ma.fields.String(allow_none=True)
