"""Marshmallow schemas of scenarios and data products (separate load and dump schemas)."""

from __future__ import annotations

import marshmallow as ma

from market.scenarios import services
from market.scenarios.models import ProductAccess, ProductStatus, ScenarioStatus
from market.web import validators as mv

_PURPOSES = ["public_welfare", "research", "internal_risk_control", "commercial_product"]


class ScenarioWriteSchema(ma.Schema):
    code = ma.fields.String(required=True, validate=mv.Length(min=1, max=services.MAX_CODE))
    title = ma.fields.String(required=True, validate=mv.Length(min=1, max=services.MAX_TITLE))
    title_en = ma.fields.String(
        load_default=None, allow_none=True, validate=mv.Length(max=services.MAX_TITLE)
    )
    description = ma.fields.String(required=True, validate=mv.Length(min=1, max=services.MAX_TEXT))
    dataset_ids = ma.fields.List(ma.fields.Integer(strict=True), required=True)
    purposes = ma.fields.List(ma.fields.String(validate=mv.OneOf(_PURPOSES)), required=True)
    #: The term (new licenses only while it runs); default from now for three years.
    starts_at = ma.fields.AwareDateTime(load_default=None, allow_none=True)
    ends_at = ma.fields.AwareDateTime(load_default=None, allow_none=True)

    class Meta:
        unknown = ma.RAISE


class ScenarioReviseSchema(ScenarioWriteSchema):
    code = ma.fields.String(
        load_default=None, allow_none=True, validate=mv.Length(max=services.MAX_CODE)
    )


class ScenarioListArgs(ma.Schema):
    status = ma.fields.String(
        load_default=None, validate=mv.OneOf([s.value for s in ScenarioStatus])
    )
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1))
    per_page = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=100))


class DecisionSchema(ma.Schema):
    decision = ma.fields.String(required=True, validate=mv.OneOf(["approve", "reject"]))
    comment = ma.fields.String(
        load_default=None, allow_none=True, validate=mv.Length(max=services.MAX_TEXT)
    )

    class Meta:
        unknown = ma.RAISE


class DatasetRefSchema(ma.Schema):
    id = ma.fields.Integer()
    title = ma.fields.String()


class ScenarioWithdrawSchema(ma.Schema):
    reason = ma.fields.String(required=True, validate=mv.Length(min=1, max=services.MAX_TEXT))

    class Meta:
        unknown = ma.RAISE


class ScenarioSchema(ma.Schema):
    id = ma.fields.Integer()
    code = ma.fields.String()
    title = ma.fields.String()
    title_en = ma.fields.String(allow_none=True)
    description = ma.fields.String()
    status = ma.fields.String(metadata={"enum": [s.value for s in ScenarioStatus]})
    purposes = ma.fields.List(ma.fields.String())
    datasets = ma.fields.List(ma.fields.Nested(DatasetRefSchema))
    submitted_at = ma.fields.DateTime(allow_none=True)
    decided_at = ma.fields.DateTime(allow_none=True)
    decision_comment = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime()
    starts_at = ma.fields.DateTime(allow_none=True)
    ends_at = ma.fields.DateTime(allow_none=True)
    #: ``status`` at read time: an approved scenario past its end is ``ended``, before its
    #: start ``not_started``.
    effective_status = ma.fields.String()
    withdrawn_at = ma.fields.DateTime(allow_none=True)
    withdrawal_reason = ma.fields.String(allow_none=True)


class ProductItemWriteSchema(ma.Schema):
    dataset_id = ma.fields.Integer(required=True, strict=True)
    columns = ma.fields.List(
        ma.fields.String(validate=mv.Length(min=1, max=200)), load_default=None, allow_none=True
    )

    class Meta:
        unknown = ma.RAISE


class ProductWriteSchema(ma.Schema):
    code = ma.fields.String(required=True, validate=mv.Length(min=1, max=services.MAX_CODE))
    title = ma.fields.String(required=True, validate=mv.Length(min=1, max=services.MAX_TITLE))
    title_en = ma.fields.String(
        load_default=None, allow_none=True, validate=mv.Length(max=services.MAX_TITLE)
    )
    description = ma.fields.String(required=True, validate=mv.Length(min=1, max=services.MAX_TEXT))
    access = ma.fields.String(required=True, validate=mv.OneOf([a.value for a in ProductAccess]))
    purpose = ma.fields.String(required=True, validate=mv.OneOf(_PURPOSES))
    duration_months = ma.fields.Integer(
        required=True, strict=True, validate=ma.validate.Range(min=1, max=60)
    )
    query_quota = ma.fields.Integer(
        required=True, strict=True, validate=ma.validate.Range(min=1, max=10**9)
    )
    items = ma.fields.List(ma.fields.Nested(ProductItemWriteSchema), required=True)

    class Meta:
        unknown = ma.RAISE


class ProductListArgs(ma.Schema):
    status = ma.fields.String(
        load_default=None, validate=mv.OneOf([s.value for s in ProductStatus])
    )
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1))
    per_page = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=100))


class ProductActionSchema(ma.Schema):
    action = ma.fields.String(required=True, validate=mv.OneOf(["publish", "withdraw"]))

    class Meta:
        unknown = ma.RAISE


class ProductItemSchema(ma.Schema):
    dataset_id = ma.fields.Integer()
    title = ma.fields.String()
    columns = ma.fields.List(ma.fields.String(), allow_none=True)
    amount = ma.fields.Integer(allow_none=True)


class ScenarioRefSchema(ma.Schema):
    id = ma.fields.Integer()
    code = ma.fields.String()
    title = ma.fields.String()


class ProductSchema(ma.Schema):
    id = ma.fields.Integer()
    code = ma.fields.String()
    title = ma.fields.String()
    title_en = ma.fields.String(allow_none=True)
    description = ma.fields.String()
    access = ma.fields.String(metadata={"enum": [a.value for a in ProductAccess]})
    purpose = ma.fields.String()
    duration_months = ma.fields.Integer()
    query_quota = ma.fields.Integer()
    status = ma.fields.String(metadata={"enum": [s.value for s in ProductStatus]})
    items = ma.fields.List(ma.fields.Nested(ProductItemSchema))
    price = ma.fields.Integer(
        allow_none=True,
        metadata={
            "description": "The product's one price in fen at the current parameters "
            "(the pricing model's quote of its parts); null if a part cannot be priced."
        },
    )
    currency = ma.fields.String()
    scenarios = ma.fields.List(
        ma.fields.Nested(ScenarioRefSchema),
        metadata={"description": "Approved scenarios a buyer may apply for it under."},
    )
    published_at = ma.fields.DateTime(allow_none=True)
    created_at = ma.fields.DateTime()


class ApplySchema(ma.Schema):
    scenario_id = ma.fields.Integer(required=True, strict=True)
    purpose_statement = ma.fields.String(required=True, validate=mv.Length(min=1, max=4000))

    class Meta:
        unknown = ma.RAISE


class RevenueArgs(ma.Schema):
    period = ma.fields.String(required=True, validate=mv.Length(min=7, max=7))


class RevenueRowSchema(ma.Schema):
    scenario_id = ma.fields.Integer(allow_none=True)
    scenario_code = ma.fields.String(allow_none=True)
    product_id = ma.fields.Integer(allow_none=True)
    product_code = ma.fields.String(allow_none=True)
    licenses = ma.fields.Integer()
    revenue = ma.fields.Integer(metadata={"description": "fen, settlements less refunds"})


class RevenueSchema(ma.Schema):
    period = ma.fields.String()
    rows = ma.fields.List(ma.fields.Nested(RevenueRowSchema))
