"""JSON API of the data sandbox: the license's tables, queries, their cost and the query log;
the privacy settings of a dataset and the privacy spending per buyer."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import current_app, g, jsonify, request
from flask.views import MethodView
from flask_babel import gettext as _
from flask_smorest import Blueprint

from market.api_base import PageArgs, page_of, paginate
from market.auth import current_actor, public
from market.datasets import permissions as dataset_perms
from market.datasets import privacy as dataset_privacy
from market.datasets.models import Dataset
from market.errors import NotFound, ValidationFailed, envelope
from market.extensions import db, limiter, per_user_key
from market.storage import storage

from . import app_engine, fastpath, services
from .schemas import (
    CostSchema,
    PrivacySettingsSchema,
    QueryLogSchema,
    QueryRequestSchema,
    QueryResultSchema,
    SpendingArgs,
    SpendingSchema,
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
            "privacy": t.privacy.as_json() if t.privacy is not None else None,
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


def notice() -> str:
    """The fixed sentence of every DP answer (never a count of withheld groups)."""
    return _(
        "Values carry random noise (differential privacy; the ± figures are 95% error "
        "bounds). Groups with too few enterprises are withheld; how many is not disclosed."
    )


def empty_reason(run: services.QueryRun) -> str | None:
    """Why an answer has no row, in words (None when it has rows).

    On differentially private data the sentence is always the same: saying "no group passed
    the threshold" rather than "nothing matched" would tell the buyer whether entities exist
    below the threshold, the very thing the noise hides. On open data the suppressed-group
    count is already in the answer, so the reason can name it.
    """
    answer = run.answer
    if answer.rows:
        return None
    if run.uses_dp:
        return _(
            "No row can be released. On privacy-protected data a group appears only when its "
            "noisy count passes the release threshold, and a filter that matches nothing gives "
            "the same empty answer; the platform does not say which of the two happened."
        )
    if answer.suppressed_groups:
        return _(
            "No group has enough entities to be shown: %(n)s groups were withheld because "
            "they hold fewer entities than the minimum. Widen the groups (fewer GROUP BY "
            "columns) or the filter.",
            n=answer.suppressed_groups,
        )
    return _(
        "No row matches the query: its filters (WHERE, HAVING) matched nothing in the "
        "licensed tables. Check the values you compare against, or widen the filter."
    )


def result_view(run: services.QueryRun) -> dict[str, Any]:
    answer = run.answer
    out: dict[str, Any] = {
        "id": run.log.id,
        "status": "ok",
        "columns": answer.columns,
        "column_kinds": answer.column_kinds,
        "rows": answer.rows,
        "truncated": answer.truncated,
        "quota_remaining": run.quota_remaining,
        "elapsed_ms": run.log.elapsed_ms,
        "epsilon_spent": eps(run.epsilon_spent),
        "repeat": run.cached,
        "cached": run.cached,
        "privacy_budget_remaining": eps(run.budget_remaining),
    }
    if run.uses_dp:
        out["privacy"] = {
            "epsilon_spent": eps(run.epsilon_spent),
            "budget_remaining": eps(run.budget_remaining),
            "error_bounds": answer.error_bounds,
            "notice": notice(),
            "cached": run.cached,
            "budgets": [b.as_json() for b in run.budgets],
        }
    else:
        out["suppressed_groups"] = answer.suppressed_groups or 0
    reason = empty_reason(run)
    if reason is not None:
        out["empty_reason"] = reason
    return out


def end_transaction() -> None:
    """Step (a)'s boundary: commit the charges, the ``running`` row and its event. The session
    then holds no transaction and no connection until step (c) uses it again (nothing touches
    it while the engine runs; ``services.run_query`` reads only plain values meanwhile)."""
    db.session.commit()


def test_noise() -> Any:
    """The core's noise seam: tests set ``app.extensions["sandbox.noise"]`` in code (never
    from configuration); production has no such key and uses OpenDP."""
    return current_app.extensions.get("sandbox.noise")


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
    @blp.alt_response(409, description="The same new question is being released for another "
                      "request and did not finish in time (release_in_flight): ask again.")
    @blp.alt_response(422, description="The policy refused the query; see errors.rule.")
    @blp.alt_response(429, description="Quota or privacy budget used up.")
    def post(self, body, license_id):
        """Run one SQL query on the license's tables (the license's buyer)."""
        try:
            # A question already released is answered by the fast path; anything else (a
            # new question, any refusal) by the full path, with nothing written before it.
            new: list[fastpath.Known] = []
            run = fastpath.answer_cached(
                db.session, current_actor(), license_id, body["sql"], settings=settings(),
                new=new,
            ) or services.run_query(
                db.session,
                current_actor(),
                license_id,
                body["sql"],
                engine=app_engine.engine(),
                local_path=storage().local_path,
                settings=settings(),
                end_transaction=end_transaction,
                noise=test_noise(),
                known=new[0] if new else None,
            )
        except services.QueryRefused as refusal:
            return refusal_response(refusal)
        out = result_view(run)
        # Commit before the response is serialized: the license row and the audit chain stay
        # locked until the commit, and every other query waits for them.
        db.session.commit()
        return out

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
            "delta_cost": estimate.delta_cost,
            "repeat": estimate.cached,
            "cached": estimate.cached,
            "uses_dp": estimate.uses_dp,
            "affordable": estimate.affordable,
            "privacy_budget_remaining": eps(estimate.budget_remaining),
            "budgets": [b.as_json() for b in estimate.budgets],
        }


def _dataset(dataset_id: int) -> Dataset:
    dataset = db.session.get(Dataset, dataset_id)
    if dataset is None:
        raise NotFound(_("Dataset %(id)s does not exist.", id=dataset_id))
    return dataset


@blp.route("/datasets/<int:dataset_id>/privacy")
class DatasetPrivacy(MethodView):
    @public
    @blp.response(200, PrivacySettingsSchema)
    def get(self, dataset_id):
        """A conditional dataset's privacy settings and declared ranges (public metadata,
        readable by whoever may read the dataset)."""
        dataset = _dataset(dataset_id)
        if not dataset_perms.can_read_dataset(g.actor, dataset):
            raise NotFound(_("Dataset %(id)s does not exist.", id=dataset_id))
        settings_ = dataset_privacy.effective_privacy(dataset)
        return {"dataset_id": dataset.id, "differential_privacy": settings_ is not None,
                "settings": settings_.as_json() if settings_ is not None else None}

    @blp.response(200, PrivacySettingsSchema)
    def put(self, dataset_id):
        """Change a conditional dataset's privacy settings: its department; the operator may
        only tighten (lower epsilon and budgets, narrower ranges). Audited.

        On a listed dataset the department's stricter values apply at once (``applied``) and its
        looser ones become a change request the operator reviews (``change_request``); they
        never apply before approval."""
        actor = current_actor()
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise ValidationFailed(
                _("Send a JSON object of privacy settings."), {"privacy": [_("Give a JSON object.")]}
            )
        dataset = _dataset(dataset_id)
        done = dataset_privacy.update_privacy(db.session, actor, dataset, body)
        return {"dataset_id": dataset.id, "differential_privacy": True,
                "settings": done.settings.as_json(), "applied": done.applied,
                "change_request": done.change_request}


@blp.route("/privacy/spending")
class PrivacySpendingView(MethodView):
    @blp.arguments(SpendingArgs, location="query")
    @blp.response(200, SpendingSchema)
    def get(self, args):
        """Privacy budget spent per buyer organization and per version, for each conditional
        dataset (the regulator and the operator; a department sees its own datasets)."""
        items = services.privacy_spending(db.session, current_actor(), args.get("dataset_id"))
        return {"items": items}
