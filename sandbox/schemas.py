"""Request and response schemas of the sandbox API (explicit load and dump schemas)."""

from __future__ import annotations

import marshmallow as ma

from .policy.parsing import MAX_SQL_CHARS


class QueryRequestSchema(ma.Schema):
    sql = ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=1, max=MAX_SQL_CHARS),
        metadata={"description": "One SELECT over the license's tables (named by slug)."},
    )


class ColumnSchema(ma.Schema):
    name = ma.fields.String(required=True)
    type = ma.fields.String()
    role = ma.fields.String(metadata={"description": "As declared by the department."})
    kind = ma.fields.String(
        metadata={
            "description": "How the policy treats it: dimension (group and filter), measure "
            "(aggregate), identifier / entity_key (never output), other."
        }
    )
    treatment = ma.fields.String(metadata={"description": "Desensitization applied."})
    lower_bound = ma.fields.Decimal(
        as_string=True, allow_none=True, metadata={"description": "The declared range (public)."}
    )
    upper_bound = ma.fields.Decimal(as_string=True, allow_none=True)


class TableSchema(ma.Schema):
    slug = ma.fields.String(required=True, metadata={"description": "The stable table name."})
    dataset_id = ma.fields.Integer()
    title = ma.fields.String()
    grade = ma.fields.String(metadata={"enum": ["open", "conditional"]})
    k_min = ma.fields.Integer(metadata={"description": "Minimum distinct entities per group."})
    version = ma.fields.Integer(metadata={"description": "The dataset version queried (current)."})
    entity_key = ma.fields.String()
    dp_epsilon_per_query = ma.fields.Decimal(
        as_string=True,
        allow_none=True,
        metadata={"description": "Epsilon each new query on this table spends; null: no DP."},
    )
    privacy = ma.fields.Nested(lambda: PrivacyValuesSchema(), allow_none=True)
    columns = ma.fields.List(ma.fields.Nested(ColumnSchema))


class QueryResultSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    status = ma.fields.String(required=True, metadata={"enum": ["ok"]})
    columns = ma.fields.List(ma.fields.String(), required=True)
    column_kinds = ma.fields.List(
        ma.fields.String(),
        metadata={"description": "Per column: dimension, value, count, sum or avg."},
    )
    rows = ma.fields.List(
        ma.fields.List(ma.fields.Raw()),
        required=True,
        metadata={"description": "Exact decimals are strings; times are ISO 8601."},
    )
    suppressed_groups = ma.fields.Integer(
        metadata={"description": "Groups withheld below k: open data only (absent on DP data)."}
    )
    truncated = ma.fields.Boolean(metadata={"description": "More rows existed than the cap."})
    empty_reason = ma.fields.String(
        metadata={"description": "Only when no row is returned: why, in the caller's language "
                  "(on DP data one fixed sentence, which never tells an empty filter from "
                  "groups below the threshold)."}
    )
    quota_remaining = ma.fields.Integer(required=True)
    elapsed_ms = ma.fields.Integer(required=True, allow_none=True)
    epsilon_spent = ma.fields.Decimal(as_string=True)
    repeat = ma.fields.Boolean(metadata={"description": "Same as cached (kept for clients)."})
    cached = ma.fields.Boolean(
        metadata={"description": "The same question over the same data was released before "
                  "(by any buyer): the stored answer, no privacy cost."}
    )
    privacy_budget_remaining = ma.fields.Decimal(as_string=True, allow_none=True)
    privacy = ma.fields.Nested(lambda: AnswerPrivacySchema(), metadata={
        "description": "On differentially private data only."})


class BudgetSchema(ma.Schema):
    dataset_id = ma.fields.Integer()
    slug = ma.fields.String()
    version = ma.fields.Integer()
    epsilon_per_query = ma.fields.String()
    delta = ma.fields.String()
    epsilon_budget = ma.fields.String(
        metadata={"description": "The buyer organization's budget on the dataset."}
    )
    epsilon_spent = ma.fields.String()
    budget_remaining = ma.fields.String(
        metadata={"description": "Shared by all the organization's licenses."}
    )
    version_budget = ma.fields.String(
        metadata={"description": "What all buyers together may spend on this version."}
    )
    version_remaining = ma.fields.String()


class AnswerPrivacySchema(ma.Schema):
    epsilon_spent = ma.fields.Decimal(as_string=True)
    budget_remaining = ma.fields.Decimal(as_string=True, allow_none=True)
    error_bounds = ma.fields.List(
        ma.fields.Dict(allow_none=True),
        metadata={
            "description": "Per column: {kind, confidence, half_width, per_row} (the 95% "
            "interval half-width of the noise, per row for AVG), or null (dimension)."
        },
    )
    notice = ma.fields.String(metadata={"description": "A fixed sentence."})
    cached = ma.fields.Boolean()
    budgets = ma.fields.List(ma.fields.Nested(BudgetSchema))


class CostSchema(ma.Schema):
    epsilon_cost = ma.fields.Decimal(
        as_string=True,
        required=True,
        metadata={"description": "What the query would spend (0 if a repeat or no DP table)."},
    )
    query_epsilon = ma.fields.Decimal(
        as_string=True, metadata={"description": "The query's cost before repeat discount."}
    )
    delta_cost = ma.fields.Decimal(as_string=True)
    repeat = ma.fields.Boolean(metadata={"description": "Same as cached (kept for clients)."})
    cached = ma.fields.Boolean(
        metadata={"description": "Already released over the same data: running it is free."}
    )
    uses_dp = ma.fields.Boolean()
    affordable = ma.fields.Boolean(
        metadata={"description": "Enough organization and version budget left (or cached)."}
    )
    privacy_budget_remaining = ma.fields.Decimal(as_string=True, allow_none=True)
    budgets = ma.fields.List(ma.fields.Nested(BudgetSchema))


class QueryLogSchema(ma.Schema):
    id = ma.fields.Integer()
    created_at = ma.fields.DateTime()
    user_id = ma.fields.Integer(allow_none=True)
    sql = ma.fields.String(attribute="sql_text")
    sql_hash = ma.fields.String()
    status = ma.fields.String(metadata={"enum": ["ok", "refused", "error", "timeout"]})
    rule = ma.fields.String(allow_none=True)
    rows_returned = ma.fields.Integer(allow_none=True)
    suppressed_groups = ma.fields.Integer(allow_none=True)
    truncated = ma.fields.Boolean()
    elapsed_ms = ma.fields.Integer(allow_none=True)
    quota_charged = ma.fields.Boolean()
    epsilon_spent = ma.fields.Decimal(as_string=True)


class PrivacyValuesSchema(ma.Schema):
    epsilon_budget = ma.fields.String()
    version_budget = ma.fields.String()
    epsilon_per_query = ma.fields.String()
    delta = ma.fields.String()
    max_groups_per_entity = ma.fields.Integer()
    max_rows_per_entity = ma.fields.Integer()
    ranges = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.List(ma.fields.String()))


class PrivacySettingsSchema(ma.Schema):
    dataset_id = ma.fields.Integer()
    differential_privacy = ma.fields.Boolean()
    settings = ma.fields.Nested(PrivacyValuesSchema, allow_none=True)


class SpendingArgs(ma.Schema):
    dataset_id = ma.fields.Integer(load_default=None, validate=ma.validate.Range(min=1))


class BuyerSpendingSchema(ma.Schema):
    buyer_org_id = ma.fields.Integer()
    buyer = ma.fields.String()
    epsilon_spent = ma.fields.String()
    delta_spent = ma.fields.String()
    releases = ma.fields.Integer()
    budget_remaining = ma.fields.String()


class VersionSpendingSchema(ma.Schema):
    version = ma.fields.Integer()
    epsilon_spent = ma.fields.String()
    releases = ma.fields.Integer()
    version_remaining = ma.fields.String()


class DatasetSpendingSchema(ma.Schema):
    dataset_id = ma.fields.Integer()
    slug = ma.fields.String()
    title = ma.fields.String()
    settings = ma.fields.Nested(PrivacyValuesSchema)
    buyers = ma.fields.List(ma.fields.Nested(BuyerSpendingSchema))
    versions = ma.fields.List(ma.fields.Nested(VersionSpendingSchema))


class SpendingSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(DatasetSpendingSchema))
