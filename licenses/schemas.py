"""Marshmallow schemas for licenses, payments, revenue and the blacklist: load schemas for
request bodies and query strings, dump schemas for answers (separate on purpose)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from licenses.models import License
from licenses.states import LicenseStatus, allowed_events
from market.api_base import MAX_PER_PAGE
from market.web import validators as mv

_STATUSES = [s.value for s in LicenseStatus]


class _Page(ma.Schema):
    page = ma.fields.Integer(load_default=1, validate=mv.Range(min=1))
    per_page = ma.fields.Integer(load_default=20, validate=mv.Range(min=1, max=MAX_PER_PAGE))


# ------------------------------------------------------------------------------- load: bodies


class LicenseApplySchema(ma.Schema):
    quote_id = ma.fields.Integer(required=True, strict=True)
    purpose_statement = ma.fields.String(
        required=True,
        validate=mv.Length(min=1, max=4000),
        metadata={"description": "What the buyer will use the data for, in its own words."},
    )
    free_use_justification = ma.fields.String(
        load_default=None,
        validate=mv.Length(max=4000),
        metadata={
            "description": "Required for a free (public-welfare) license: why the use is "
            "public welfare. Free licenses always go to the operator's review."
        },
    )


class ReviewSchema(ma.Schema):
    decision = ma.fields.String(required=True, validate=mv.OneOf(["approve", "reject"]))
    comment = ma.fields.String(load_default="", validate=mv.Length(max=2000))


class ReasonSchema(ma.Schema):
    reason = ma.fields.String(required=True, validate=mv.Length(min=1, max=2000))


class RevokeSchema(ReasonSchema):
    refund = ma.fields.Boolean(
        load_default=True,
        metadata={
            "description": "Refund the unused share of term and quota, the smaller of the two "
            "(false: revocation for breach)."
        },
    )


class PaymentCreateSchema(ma.Schema):
    provider = ma.fields.String(required=True, validate=mv.OneOf(["invoice", "stripe"]))


class SettleSchema(ma.Schema):
    bank_reference = ma.fields.String(required=True, validate=mv.Length(min=1, max=200))


class VerifyRequestSchema(ma.Schema):
    policy = ma.fields.Dict(required=True)
    signature = ma.fields.String(required=True, validate=mv.Length(max=200))
    public_key_id = ma.fields.String(validate=mv.Length(max=64))


class PayoutCreateSchema(ma.Schema):
    department_id = ma.fields.Integer(required=True, strict=True)
    amount = ma.fields.Integer(
        required=True,
        strict=True,
        validate=mv.Range(min=1),
        metadata={"description": "Fen."},
    )
    reference = ma.fields.String(required=True, validate=mv.Length(min=1, max=120))


class BlacklistAddSchema(ma.Schema):
    organization_id = ma.fields.Integer(required=True, strict=True)
    reason = ma.fields.String(required=True, validate=mv.Length(min=1, max=2000))


# ------------------------------------------------------------------------ load: query strings


class LicenseListArgs(_Page):
    status = ma.fields.String(validate=mv.OneOf(_STATUSES))


class PaymentListArgs(_Page):
    status = ma.fields.String(validate=mv.OneOf(["pending", "settled", "failed", "canceled"]))
    provider = ma.fields.String(validate=mv.OneOf(["invoice", "stripe"]))


class RefundListArgs(_Page):
    status = ma.fields.String(
        validate=mv.OneOf(["pending", "paid", "succeeded"]),
        metadata={"description": "pending: credit notes not paid back yet."},
    )


class StatementArgs(_Page):
    period = ma.fields.String(
        required=True,
        validate=mv.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$"),
        metadata={"description": "YYYY-MM, an Asia/Shanghai calendar month."},
    )
    department_id = ma.fields.Integer()
    format = ma.fields.String(load_default="json", validate=mv.OneOf(["json", "csv"]))


class LedgerArgs(_Page):
    per_page = ma.fields.Integer(load_default=50, validate=mv.Range(min=1, max=MAX_PER_PAGE))
    kind = ma.fields.String(
        validate=mv.OneOf(
            [
                "invoice_issued",
                "invoice_voided",
                "payment_settled",
                "refund_issued",
                "credit_note_paid",
                "payout",
            ]
        )
    )
    account = ma.fields.String(
        validate=mv.Length(max=100),
        metadata={"description": "Account prefix, e.g. 'payable:department:'."},
    )
    license_id = ma.fields.Integer()


# ------------------------------------------------------------------------------------- dump


class OrganizationRefSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    kind = ma.fields.String()


class LicensedDatasetSchema(ma.Schema):
    dataset_id = ma.fields.Integer()
    dataset_version = ma.fields.Integer()
    title = ma.fields.String()
    open_grade = ma.fields.String()
    columns = ma.fields.List(ma.fields.String())
    amount = ma.fields.Integer(metadata={"description": "This dataset's part of the quote, fen."})


class ScopeSchema(ma.Schema):
    datasets = ma.fields.List(ma.fields.Nested(LicensedDatasetSchema))
    duration_months = ma.fields.Integer()
    purpose = ma.fields.String()
    query_quota = ma.fields.Integer()


class PriceSchema(ma.Schema):
    total = ma.fields.Integer(metadata={"description": "Fen."})
    currency = ma.fields.String()


class LicenseSchema(ma.Schema):
    id = ma.fields.Integer()
    status = ma.fields.String(metadata={"enum": _STATUSES})
    buyer = ma.fields.Nested(OrganizationRefSchema)
    quote_id = ma.fields.Integer()
    purpose_statement = ma.fields.String()
    free_use_justification = ma.fields.String(allow_none=True)
    scope = ma.fields.Nested(ScopeSchema)
    starts_at = ma.fields.DateTime(allow_none=True)
    ends_at = ma.fields.DateTime(allow_none=True)
    quota_remaining = ma.fields.Integer()
    privacy_budget_remaining = ma.fields.Decimal(
        as_string=True,
        allow_none=True,
        metadata={
            "description": "Differential-privacy epsilon the buyer organization has left (the "
            "smallest over the license's DP datasets, shared by all its licenses); null when "
            "no licensed dataset is differentially private."
        },
    )
    price = ma.fields.Nested(PriceSchema)
    created_at = ma.fields.DateTime()
    review_comment = ma.fields.String(allow_none=True)
    status_reason = ma.fields.String(allow_none=True)
    has_document = ma.fields.Boolean()
    allowed_events = ma.fields.List(ma.fields.String())
    #: A license for a data product under a scenario (场景/数据产品); null otherwise.
    scenario_id = ma.fields.Integer(allow_none=True)
    product_id = ma.fields.Integer(allow_none=True)


def _privacy_budget_remaining(lic: License) -> Any:
    """The buyer organization's remaining epsilon (smallest over the license's DP datasets,
    shared by all its licenses); null when no licensed dataset is differentially private."""
    from sqlalchemy.orm import object_session

    from sandbox.services import organization_budget_remaining

    session = object_session(lic)
    return None if session is None else organization_budget_remaining(session, lic)


def license_view(lic: License) -> dict[str, Any]:
    """The license as the API shows it (see API.md, "What a license contains")."""
    return {
        "id": lic.id,
        "status": lic.status,
        "buyer": {"id": lic.buyer.id, "name": lic.buyer.name, "kind": lic.buyer.kind},
        "quote_id": lic.quote_id,
        "purpose_statement": lic.purpose_statement,
        "free_use_justification": lic.free_use_justification,
        "scope": {
            "datasets": [
                {
                    "dataset_id": item.dataset_id,
                    "dataset_version": item.dataset_version,
                    "title": item.dataset.title,
                    "open_grade": item.dataset.open_grade,
                    "columns": list(item.columns),
                    "amount": item.amount_fen,
                }
                for item in lic.items
            ],
            "duration_months": lic.duration_months,
            "purpose": lic.purpose,
            "query_quota": lic.query_quota,
        },
        "starts_at": lic.starts_at,
        "ends_at": lic.ends_at,
        "quota_remaining": lic.quota_remaining,
        "privacy_budget_remaining": _privacy_budget_remaining(lic),
        "price": {"total": lic.price_total_fen, "currency": lic.currency},
        "created_at": lic.created_at,
        "review_comment": lic.review_comment,
        "status_reason": lic.status_reason,
        "has_document": lic.document is not None,
        "allowed_events": sorted(e.value for e in allowed_events(lic.status)),
        "scenario_id": lic.scenario_id,
        "product_id": lic.product_id,
    }


class PaymentResultSchema(ma.Schema):
    payment_id = ma.fields.Integer(required=True)
    provider = ma.fields.String()
    status = ma.fields.String()
    amount = ma.fields.Integer(metadata={"description": "Fen."})
    currency = ma.fields.String()
    invoice_number = ma.fields.String(metadata={"description": "Invoice payments."})
    client_secret = ma.fields.String(
        metadata={"description": "Stripe payments: confirm it with Stripe.js in the browser."}
    )


class PaymentSchema(ma.Schema):
    id = ma.fields.Integer()
    license_id = ma.fields.Integer()
    provider = ma.fields.String()
    status = ma.fields.String()
    amount = ma.fields.Integer(attribute="amount_fen")
    currency = ma.fields.String()
    invoice_number = ma.fields.String(allow_none=True)
    bank_reference = ma.fields.String(allow_none=True)
    refunded = ma.fields.Integer(attribute="refunded_fen")
    created_at = ma.fields.DateTime()
    settled_at = ma.fields.DateTime(allow_none=True)


class RefundSchema(ma.Schema):
    id = ma.fields.Integer()
    payment_id = ma.fields.Integer()
    license_id = ma.fields.Integer()
    amount = ma.fields.Integer(attribute="amount_fen")
    status = ma.fields.String(
        metadata={"description": "succeeded (Stripe), pending (credit note to pay back), paid."}
    )
    credit_note_number = ma.fields.String(allow_none=True)
    reason = ma.fields.String()
    created_at = ma.fields.DateTime()
    paid_at = ma.fields.DateTime(allow_none=True)
    paid_reference = ma.fields.String(
        allow_none=True,
        metadata={"description": "The bank transfer's reference, or Stripe's refund id."},
    )
    attempts = ma.fields.Integer(metadata={"description": "Provider calls made for it."})
    last_error = ma.fields.String(
        allow_none=True, metadata={"description": "Why the last Stripe refund call failed."}
    )
    retryable = ma.fields.Function(
        lambda r: _is_retryable(r),
        metadata={
            "description": "A failed Stripe refund: POST /refunds/{id}/retry tries it again."
        },
    )


def _is_retryable(refund) -> bool:
    from licenses.payment_refunds import is_retryable

    return is_retryable(refund)


class CreditNotePaySchema(ma.Schema):
    reference = ma.fields.String(
        required=True,
        validate=mv.Length(min=1, max=200),
        metadata={"description": "The reference of the bank transfer back to the buyer."},
    )


class DocumentSchema(ma.Schema):
    policy = ma.fields.Dict(metadata={"description": "The ODRL 2.2 Agreement (JSON-LD)."})
    signature = ma.fields.String(metadata={"description": "Ed25519, URL-safe base64, no padding."})
    public_key_id = ma.fields.String()


class VerifyResultSchema(ma.Schema):
    valid = ma.fields.Boolean(required=True)


class WebhookResultSchema(ma.Schema):
    received = ma.fields.Boolean()
    duplicate = ma.fields.Boolean()
    event_id = ma.fields.String()
    outcome = ma.fields.String()


class StatementEntrySchema(ma.Schema):
    journal_id = ma.fields.Integer()
    posted_at = ma.fields.DateTime()
    kind = ma.fields.String()
    reference = ma.fields.String()
    license_id = ma.fields.Integer(allow_none=True)
    amount = ma.fields.Integer(metadata={"description": "Fen; negative for refunds and payouts."})


class StatementSchema(ma.Schema):
    department = ma.fields.Nested(OrganizationRefSchema)
    period = ma.fields.String()
    currency = ma.fields.String()
    opening_balance = ma.fields.Integer()
    revenue = ma.fields.Integer()
    refunds = ma.fields.Integer()
    payouts = ma.fields.Integer()
    closing_balance = ma.fields.Integer()
    entries = ma.fields.List(ma.fields.Nested(StatementEntrySchema))


class StatementPageSchema(ma.Schema):
    period = ma.fields.String()
    timezone = ma.fields.String()
    items = ma.fields.List(ma.fields.Nested(StatementSchema), required=True)
    total = ma.fields.Integer(required=True)
    page = ma.fields.Integer(required=True)
    per_page = ma.fields.Integer(required=True)


class LedgerLineSchema(ma.Schema):
    id = ma.fields.Integer()
    journal_id = ma.fields.Integer()
    kind = ma.fields.String()
    reference = ma.fields.String()
    posted_at = ma.fields.DateTime()
    account = ma.fields.String()
    debit = ma.fields.Integer()
    credit = ma.fields.Integer()
    currency = ma.fields.String()
    license_id = ma.fields.Integer(allow_none=True)
    payment_id = ma.fields.Integer(allow_none=True)
    department_id = ma.fields.Integer(allow_none=True)


class PayoutSchema(ma.Schema):
    journal_id = ma.fields.Integer()
    department_id = ma.fields.Integer()
    amount = ma.fields.Integer()
    currency = ma.fields.String()
    reference = ma.fields.String()
    posted_at = ma.fields.DateTime()
    payable_after = ma.fields.Integer(metadata={"description": "Still owed after the payout."})


class WelfareBodyAddSchema(ma.Schema):
    organization_id = ma.fields.Integer(required=True, strict=True)
    reason = ma.fields.String(required=True, validate=mv.Length(max=2000))


class WelfareBodySchema(ma.Schema):
    organization = ma.fields.Nested(OrganizationRefSchema)
    reason = ma.fields.String()
    created_at = ma.fields.DateTime()


class BlacklistEntrySchema(ma.Schema):
    organization = ma.fields.Nested(OrganizationRefSchema)
    reason = ma.fields.String()
    created_at = ma.fields.DateTime()
