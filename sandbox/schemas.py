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
    lower_bound = ma.fields.Decimal(as_string=True, allow_none=True)
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
    suppressed_groups = ma.fields.Integer(required=True)
    truncated = ma.fields.Boolean(metadata={"description": "More rows existed than the cap."})
    quota_remaining = ma.fields.Integer(required=True)
    elapsed_ms = ma.fields.Integer(required=True)
    epsilon_spent = ma.fields.Decimal(as_string=True)
    repeat = ma.fields.Boolean(
        metadata={"description": "The same question was answered before: same noise, no cost."}
    )
    privacy_budget_remaining = ma.fields.Decimal(as_string=True, allow_none=True)


class CostSchema(ma.Schema):
    epsilon_cost = ma.fields.Decimal(
        as_string=True,
        required=True,
        metadata={"description": "What the query would spend (0 if a repeat or no DP table)."},
    )
    query_epsilon = ma.fields.Decimal(
        as_string=True, metadata={"description": "The query's cost before repeat discount."}
    )
    repeat = ma.fields.Boolean()
    uses_dp = ma.fields.Boolean()
    privacy_budget_remaining = ma.fields.Decimal(as_string=True, allow_none=True)


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
