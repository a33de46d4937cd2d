"""Request (load) and response (dump) schemas of the pricing API. Money is integer fen."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

import pricing
from market.db import utcnow
from market.i18n import N_, translate
from market.web import validators as mv

PURPOSES = [str(p) for p in pricing.PURPOSE_ORDER]
_COLUMN = ma.fields.String(validate=mv.Length(min=1, max=128))
_EXCLUSIVE = N_("public data is never licensed exclusively; remove this field")


class _NoExclusivity(ma.Schema):
    """Public data is licensed non-exclusively: a request for exclusivity is refused by name
    rather than as an unknown field, so the client learns why."""

    exclusive = ma.fields.Raw(load_only=True)
    exclusivity = ma.fields.Raw(load_only=True)

    @ma.validates_schema
    def _refuse_exclusivity(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors = {
            k: [translate(_EXCLUSIVE)]
            for k in ("exclusive", "exclusivity")
            if data.get(k) not in (None, False)
        }
        if errors:
            raise ma.ValidationError(errors)

    @ma.post_load
    def _drop_exclusivity(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        data.pop("exclusive", None)
        data.pop("exclusivity", None)
        return data


class QuoteItemArgsSchema(_NoExclusivity):
    dataset_id = ma.fields.Integer(required=True, strict=True)
    columns = ma.fields.List(
        _COLUMN,
        allow_none=True,
        load_default=None,
        validate=mv.Length(max=1000),
        metadata={
            "description": "Column names; null (or absent) for all columns. "
            "The entity key is always included."
        },
    )


class QuoteCreateSchema(_NoExclusivity):
    items = ma.fields.List(
        ma.fields.Nested(QuoteItemArgsSchema),
        required=True,
        validate=mv.Length(min=1, max=200),
    )
    duration_months = ma.fields.Integer(
        required=True, strict=True, validate=mv.Range(1, pricing.MAX_DURATION_MONTHS)
    )
    purpose = ma.fields.String(required=True, validate=mv.OneOf(PURPOSES))
    query_quota = ma.fields.Integer(
        required=True, strict=True, validate=mv.Range(1, pricing.MAX_QUERY_QUOTA)
    )


class ColumnsChange(ma.fields.Field):
    """A list of column names, an object ``{dataset_id: [names] | null}``, or null (all)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, list):
            return self._names(value)
        if isinstance(value, dict):
            out = {}
            for key, names in value.items():
                if not str(key).isdigit():
                    raise ma.ValidationError(
                        translate(N_("%(key)s is not a dataset id"), {"key": repr(key)})
                    )
                out[int(key)] = None if names is None else self._names(names)
            return out
        raise ma.ValidationError(
            translate(N_("send a list of column names, an object {dataset_id: [names]}, or null"))
        )

    @staticmethod
    def _names(value: Any) -> list[str]:
        if not isinstance(value, list) or not all(
            isinstance(v, str) and 0 < len(v) <= 128 for v in value
        ):
            raise ma.ValidationError(translate(N_("must be a list of column names")))
        return value


class UpgradeQuoteArgsSchema(_NoExclusivity):
    duration_months = ma.fields.Integer(
        strict=True, validate=mv.Range(1, pricing.MAX_DURATION_MONTHS)
    )
    query_quota = ma.fields.Integer(strict=True, validate=mv.Range(1, pricing.MAX_QUERY_QUOTA))
    columns = ColumnsChange(
        allow_none=True,
        metadata={
            "description": "New columns: a list (one-dataset license), an object "
            "{dataset_id: [names] | null}, or null for all columns. Absent: unchanged."
        },
    )


class QuoteItemSchema(ma.Schema):
    dataset_id = ma.fields.Integer()
    dataset_version = ma.fields.Integer()
    title = ma.fields.String()
    category = ma.fields.String()
    columns = ma.fields.List(
        ma.fields.String(), allow_none=True, metadata={"description": "null: all columns"}
    )
    amount = ma.fields.Integer(metadata={"description": "fen"})
    factors = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.String(),
        metadata={"description": "Decimal strings; base_fen × … rounded up to a fen is amount."},
    )
    scope_parts = ma.fields.Dict(
        metadata={
            "description": "The parts the scope factor sums: {columns|duration|quota: "
            "{share, value}}; scope = Σ share × value."
        }
    )
    capped = ma.fields.Boolean()
    ceiling_fen = ma.fields.Integer(
        allow_none=True, metadata={"description": "The category's price ceiling per year, fen."}
    )
    query_ceiling_fen = ma.fields.Integer(
        allow_none=True, metadata={"description": "The category's price ceiling per query, fen."}
    )
    over_cap = ma.fields.Boolean(
        metadata={"description": "The category's revenue cap was reached: reduction applied."}
    )
    previous_amount = ma.fields.Integer(
        metadata={"description": "Upgrade quotes: the item's old price."}
    )


def _doc(name: str):
    return ma.fields.Function(lambda q: (q.document or {}).get(name))


class QuoteSchema(ma.Schema):
    id = ma.fields.Integer()
    total = ma.fields.Integer(attribute="total_fen", metadata={"description": "fen"})
    currency = ma.fields.String()
    subtotal = _doc("subtotal")
    bundle_discount = _doc("bundle_discount")
    items = ma.fields.List(ma.fields.Nested(QuoteItemSchema))
    purpose = ma.fields.String()
    duration_months = ma.fields.Integer()
    query_quota = ma.fields.Integer()
    model_version = ma.fields.String()
    params_version = ma.fields.Integer()
    created_at = ma.fields.DateTime()
    expires_at = ma.fields.DateTime()
    expired = ma.fields.Function(lambda q: q.is_expired(utcnow()))
    upgrade_of_license_id = ma.fields.Integer(allow_none=True)
    previous_total = _doc("previous_total")
    new_total = _doc("new_total")
    document = ma.fields.Dict(metadata={"description": "The signed canonical document."})
    signature = ma.fields.String(
        metadata={"description": "Ed25519 over the canonical JSON of document"}
    )
    public_key_id = ma.fields.String(attribute="key_id")


class QuoteBriefSchema(ma.Schema):
    id = ma.fields.Integer()
    total = ma.fields.Integer(attribute="total_fen")
    currency = ma.fields.String()
    purpose = ma.fields.String()
    datasets = ma.fields.Function(lambda q: [i["dataset_id"] for i in q.items])
    params_version = ma.fields.Integer()
    created_at = ma.fields.DateTime()
    expires_at = ma.fields.DateTime()
    expired = ma.fields.Function(lambda q: q.is_expired(utcnow()))
    upgrade_of_license_id = ma.fields.Integer(allow_none=True)


class ParametersSchema(ma.Schema):
    version = ma.fields.Integer()
    parameters = ma.fields.Dict(attribute="params")
    note = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime()


class ParametersUpdateSchema(ma.Schema):
    parameters = ma.fields.Dict(
        required=True,
        metadata={
            "description": "Fields to change, as GET returns them (decimals as strings); "
            "others keep their value. The version is assigned by the server."
        },
    )
    note = ma.fields.String(allow_none=True, validate=mv.Length(max=500))
    base_version = ma.fields.Integer(
        strict=True,
        metadata={"description": "Refuse (409) if a newer version was saved since this one."},
    )


class ProposalCreateSchema(ma.Schema):
    changes = ma.fields.Dict(
        required=True,
        metadata={
            "description": "Ceilings and revenue caps only (category_ceilings_fen, "
            "default_ceiling_fen, category_query_ceilings_fen, default_query_ceiling_fen, "
            "revenue_caps_fen, default_revenue_cap_fen, over_cap_reduction), as GET "
            "/pricing/parameters returns them."
        },
    )
    note = ma.fields.String(allow_none=True, validate=mv.Length(max=500))


class ProposalDecisionSchema(ma.Schema):
    note = ma.fields.String(allow_none=True, validate=mv.Length(max=500))


class ProposalSchema(ma.Schema):
    id = ma.fields.Integer()
    status = ma.fields.String(metadata={"description": "pending, approved or rejected"})
    changes = ma.fields.Dict()
    based_on_version = ma.fields.Integer()
    note = ma.fields.String(allow_none=True)
    proposed_at = ma.fields.DateTime()
    decided_at = ma.fields.DateTime(allow_none=True)
    decision_note = ma.fields.String(allow_none=True)
    result_version = ma.fields.Integer(
        allow_none=True,
        metadata={"description": "The parameter version the approval created (published)."},
    )


class RevenueCapArgsSchema(ma.Schema):
    period = ma.fields.String(
        validate=mv.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$", error="must be a month written YYYY-MM"),
        metadata={"description": "YYYY-MM (Asia/Shanghai); default: the current month"},
    )


class RevenueCapRowSchema(ma.Schema):
    period = ma.fields.String()
    party = ma.fields.String(metadata={"description": "operator, or department:<id>"})
    party_name = ma.fields.String(allow_none=True)
    category = ma.fields.String()
    revenue = ma.fields.Integer()
    prior_excess = ma.fields.Integer()
    cap = ma.fields.Integer(allow_none=True)
    counted = ma.fields.Integer()
    within_cap = ma.fields.Integer()
    excess_to_deduct_next_period = ma.fields.Integer()
    headroom = ma.fields.Integer(allow_none=True)
    utilization = ma.fields.String(allow_none=True)
    currency = ma.fields.String()


class RevenueCapTotalsSchema(ma.Schema):
    revenue = ma.fields.Integer()
    excess_to_deduct_next_period = ma.fields.Integer()


class RevenueCapReportSchema(ma.Schema):
    period = ma.fields.String()
    next_period = ma.fields.String()
    params_version = ma.fields.Integer()
    basis = ma.fields.String(
        metadata={
            "description": "settled_payments_net_of_refunds: payments in the month they "
            "settle, less refunds in the month they are issued (Asia/Shanghai)"
        }
    )
    carried_from = ma.fields.String(allow_none=True)
    currency = ma.fields.String()
    totals = ma.fields.Nested(RevenueCapTotalsSchema, metadata={"description": "The operator's"})
    rows = ma.fields.List(ma.fields.Nested(RevenueCapRowSchema))


class QuoteEstimateItemSchema(ma.Schema):
    dataset_id = ma.fields.Integer()
    amount = ma.fields.Integer(metadata={"description": "fen"})
    factors = ma.fields.Dict(metadata={"description": "factor name -> decimal string"})


class QuoteEstimateSchema(ma.Schema):
    """An unsigned price: what ``POST /quotes`` would sign now. Not an offer."""

    total = ma.fields.Integer(metadata={"description": "fen"})
    subtotal = ma.fields.Integer(metadata={"description": "fen"})
    bundle_discount = ma.fields.Integer(metadata={"description": "fen"})
    currency = ma.fields.String()
    model_version = ma.fields.String()
    items = ma.fields.List(ma.fields.Nested(QuoteEstimateItemSchema))
