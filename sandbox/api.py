"""JSON API of the data sandbox: the license's tables, queries, their cost and the query log."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import current_app, jsonify
from flask.views import MethodView
from flask_smorest import Blueprint

from market.api_base import PageArgs, page_of, paginate
from market.auth import current_actor
from market.errors import envelope
from market.extensions import db, limiter, per_user_key
from market.keys import pseudonym_key
from market.storage import storage

from . import app_engine, services
from .schemas import (
    CostSchema,
    QueryLogSchema,
    QueryRequestSchema,
    QueryResultSchema,
    TableSchema,
)
from .workspace import SandboxSettings, Workspace

_EPS_PLACES = Decimal("0.0001")

blp = Blueprint(
    "sandbox_api",
    __name__,
    url_prefix="/api/v1",
    description="The data sandbox: SQL over the licensed tables, results not rows",
)


def _limit() -> str:
    return current_app.config.get("MARKET_SANDBOX_RATE_LIMIT", "120 per minute")


sandbox_rate_limit = limiter.limit(_limit, key_func=per_user_key, methods=["POST"])


def settings() -> SandboxSettings:
    return SandboxSettings.from_config(current_app.config)


def tables_view(workspace: Workspace) -> list[dict[str, Any]]:
    return [
        {
            "slug": t.slug,
            "dataset_id": t.dataset_id,
            "title": t.title,
            "grade": t.grade,
            "k_min": t.k_min,
            "version": t.version,
            "entity_key": t.entity_key,
            "dp_epsilon_per_query": t.dp_epsilon_per_query,
            "columns": [
                {
                    "name": c.name,
                    "type": c.type,
                    "role": c.role,
                    "kind": c.kind,
                    "treatment": c.treatment,
                    "lower_bound": c.lower,
                    "upper_bound": c.upper,
                }
                for c in t.columns
            ],
        }
        for t in workspace.tables
    ]


def refusal_response(refusal: services.QueryRefused):
    """Roll back the request, record the refusal (log row + audit) on its own, answer.

    The response is built here rather than by the error handler: the handler would add a
    second, generic denial event for the same request.
    """
    db.session.rollback()
    services.record_refusal(db.session, current_actor(), refusal)
    db.session.commit()
    response = jsonify(envelope(refusal.status, refusal.message, refusal.errors))
    response.status_code = refusal.status
    return response


def eps(value: Decimal | None) -> Decimal | None:
    """Epsilon as the ledger stores it: four decimal places."""
    return None if value is None else Decimal(value).quantize(_EPS_PLACES)


def result_view(run: services.QueryRun) -> dict[str, Any]:
    return {
        "id": run.log.id,
        "status": "ok",
        "columns": list(run.result.columns),
        "column_kinds": [o.kind for o in run.checked.outputs],
        "rows": services.json_rows(run.result.rows),
        "suppressed_groups": run.result.suppressed_groups,
        "truncated": run.result.truncated,
        "quota_remaining": run.quota_remaining,
        "elapsed_ms": run.log.elapsed_ms,
        "epsilon_spent": eps(run.log.epsilon_spent),
        "repeat": run.repeat,
        "privacy_budget_remaining": eps(run.privacy_budget_remaining),
    }


@blp.route("/sandbox/<int:license_id>/tables")
class Tables(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_of(TableSchema))
    def get(self, args, license_id):
        """The tables and columns a license grants (its buyer, the operator, the regulator)."""
        _, workspace = services.workspace_of(db.session, current_actor(), license_id, settings())
        items = tables_view(workspace)
        start = (args["page"] - 1) * args["per_page"]
        return {
            "items": items[start : start + args["per_page"]],
            "total": len(items),
            "page": args["page"],
            "per_page": args["per_page"],
        }


@blp.route("/sandbox/<int:license_id>/queries")
class Queries(MethodView):
    decorators = [sandbox_rate_limit]

    @blp.arguments(QueryRequestSchema)
    @blp.response(200, QueryResultSchema)
    @blp.alt_response(403, description="License not active, or the buyer is blacklisted.")
    @blp.alt_response(404, description="No such license (or another buyer's).")
    @blp.alt_response(422, description="The policy refused the query; see errors.rule.")
    @blp.alt_response(429, description="Quota or privacy budget used up.")
    def post(self, body, license_id):
        """Run one SQL query on the license's tables (the license's buyer)."""
        try:
            run = services.run_query(
                db.session,
                current_actor(),
                license_id,
                body["sql"],
                engine=app_engine.engine(),
                local_path=storage().local_path,
                settings=settings(),
                dp_key=pseudonym_key(),
            )
        except services.QueryRefused as refusal:
            return refusal_response(refusal)
        return result_view(run)

    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_of(QueryLogSchema))
    def get(self, args, license_id):
        """The license's query history, newest first (its buyer, the operator, the regulator)."""
        stmt = services.query_history(db.session, current_actor(), license_id)
        return paginate(db.session, stmt, args["page"], args["per_page"])


@blp.route("/sandbox/<int:license_id>/queries/cost")
class Cost(MethodView):
    decorators = [sandbox_rate_limit]

    @blp.arguments(QueryRequestSchema)
    @blp.response(200, CostSchema)
    def post(self, body, license_id):
        """The privacy budget a query would spend, by the policy alone (nothing is run)."""
        try:
            estimate = services.estimate_cost(
                db.session, current_actor(), license_id, body["sql"], settings=settings()
            )
        except services.QueryRefused as refusal:
            # A cost check is not a query: no log row and no sandbox.query event; the error
            # handler answers and records denials as it does everywhere else.
            refusal.audit = refusal.extra_audit
            raise
        return {
            "epsilon_cost": eps(estimate.epsilon_cost),
            "query_epsilon": eps(estimate.query_epsilon),
            "repeat": estimate.repeat,
            "uses_dp": estimate.uses_dp,
            "privacy_budget_remaining": eps(estimate.privacy_budget_remaining),
        }
