"""Pricing API: quotes, upgrade quotes, pricing parameters and the revenue-cap report."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from market.accounts import permissions as account_perm
from market.api_base import PageArgs, page_of, paginate
from market.auth import current_actor, public
from market.extensions import db, limiter, per_user_key
from market.quotes import parameters, revenue, services
from market.quotes import permissions as perm
from market.quotes.schemas import (
    ParametersSchema,
    ParametersUpdateSchema,
    ProposalCreateSchema,
    ProposalDecisionSchema,
    ProposalSchema,
    QuoteBriefSchema,
    QuoteCreateSchema,
    QuoteEstimateSchema,
    QuoteSchema,
    RevenueCapArgsSchema,
    RevenueCapReportSchema,
    UpgradeQuoteArgsSchema,
)

blp = Blueprint(
    "pricing", __name__, url_prefix="/api/v1", description="Quotes and pricing administration"
)


def _quote_limit() -> str:
    return current_app.config.get("MARKET_QUOTE_RATE_LIMIT", services.DEFAULT_RATE_LIMIT)


quote_rate_limit = limiter.limit(_quote_limit, key_func=per_user_key, methods=["POST"])


def _estimate_limit() -> str:
    return current_app.config.get("MARKET_QUOTE_ESTIMATE_RATE_LIMIT", "300 per minute")


#: The live calculator asks on every change (debounced), so it has a limit of its own.
estimate_rate_limit = limiter.limit(_estimate_limit, key_func=per_user_key, methods=["POST"])


def quote_request(body: dict) -> services.QuoteRequest:
    """The service request from a validated ``QuoteCreateSchema`` body (also used by views)."""
    return services.QuoteRequest(
        items=tuple(
            services.ItemRequest(
                item["dataset_id"], None if item["columns"] is None else tuple(item["columns"])
            )
            for item in body["items"]
        ),
        duration_months=body["duration_months"],
        purpose=body["purpose"],
        query_quota=body["query_quota"],
    )


@blp.route("/quotes")
class Quotes(MethodView):
    decorators = [quote_rate_limit]

    @blp.arguments(QuoteCreateSchema)
    @blp.response(201, QuoteSchema)
    def post(self, body):
        """Ask for a signed price quote (buyer)."""
        actor = current_actor()
        services.ensure_can_request_quote(actor)  # the caller first, then the body
        return services.create_quote(db.session, actor, quote_request(body))

    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_of(QuoteBriefSchema))
    def get(self, args):
        """The caller's organization's quotes, newest first (buyer)."""
        stmt = services.list_quotes(current_actor())
        return paginate(db.session, stmt, args["page"], args["per_page"])


@blp.route("/quotes/estimate")
class QuoteEstimate(MethodView):
    decorators = [estimate_rate_limit]

    @blp.arguments(QuoteCreateSchema)
    @blp.response(200, QuoteEstimateSchema)
    def post(self, body):
        """Price a request without storing or signing a quote (buyer; the live calculator).

        The same validation and price as ``POST /quotes``; nothing is stored or audited.
        """
        actor = current_actor()
        services.ensure_can_request_quote(actor)
        return services.estimate_quote(db.session, actor, quote_request(body)).to_dict()


@blp.route("/quotes/<int:quote_id>")
class QuoteItem(MethodView):
    @blp.response(200, QuoteSchema)
    def get(self, quote_id):
        """One quote, for the buyer organization that asked for it (others get 404)."""
        return services.get_quote(db.session, current_actor(), quote_id)


@blp.route("/licenses/<int:license_id>/upgrade-quotes")
class UpgradeQuotes(MethodView):
    decorators = [quote_rate_limit]

    @blp.arguments(UpgradeQuoteArgsSchema)
    @blp.response(201, QuoteSchema)
    def post(self, body, license_id):
        """Quote widening an active license: the difference P(new) − P(old) ≥ 0 (owning buyer)."""
        request = services.UpgradeRequest(
            duration_months=body.get("duration_months"),
            query_quota=body.get("query_quota"),
            columns=body.get("columns", services.KEEP),
        )
        return services.create_upgrade_quote(db.session, current_actor(), license_id, request)


@blp.route("/pricing/parameters")
class Parameters(MethodView):
    @public
    @blp.response(200, ParametersSchema)
    def get(self):
        """The current pricing parameters and their version (anyone)."""
        return parameters.current_parameter_set(db.session)

    @blp.arguments(ParametersUpdateSchema)
    @blp.response(200, ParametersSchema)
    def put(self, body):
        """Save a new parameter version (operator). Quotes already issued keep theirs."""
        return parameters.save_parameters(
            db.session,
            current_actor(),
            body["parameters"],
            note=body.get("note"),
            base_version=body.get("base_version"),
        )


@blp.route("/pricing/parameters/versions")
class ParameterVersions(MethodView):
    @public
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_of(ParametersSchema))
    def get(self, args):
        """Every parameter version, newest first (anyone), to check an old quote's price."""
        parameters.current_parameter_set(db.session)
        return paginate(db.session, parameters.parameter_history(), args["page"], args["per_page"])


@blp.route("/pricing/parameters/versions/<int:version>")
class ParameterVersion(MethodView):
    @public
    @blp.response(200, ParametersSchema)
    def get(self, version):
        """One parameter version (anyone)."""
        return parameters.parameter_set(db.session, version)


@blp.route("/pricing/proposals")
class Proposals(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_of(ProposalSchema))
    def get(self, args):
        """Proposed ceilings and revenue caps, pending first (operator, regulator)."""
        stmt = parameters.list_proposals(current_actor())
        return paginate(db.session, stmt, args["page"], args["per_page"])

    @blp.arguments(ProposalCreateSchema)
    @blp.response(201, ProposalSchema)
    def post(self, body):
        """Propose ceilings and revenue caps; they apply once the regulator approves
        (operator)."""
        return parameters.propose(
            db.session, current_actor(), body["changes"], note=body.get("note")
        )


@blp.route("/pricing/proposals/<int:proposal_id>")
class Proposal(MethodView):
    @blp.response(200, ProposalSchema)
    def get(self, proposal_id):
        """One proposal (operator, regulator)."""
        return parameters.get_proposal(db.session, current_actor(), proposal_id)


@blp.route("/pricing/proposals/<int:proposal_id>/approve")
class ProposalApprove(MethodView):
    @blp.arguments(ProposalDecisionSchema)
    @blp.response(200, ProposalSchema)
    def post(self, body, proposal_id):
        """Approve a proposal: its values become a new, published parameter version
        (regulator)."""
        return parameters.decide(
            db.session, current_actor(), proposal_id, approve=True, note=body.get("note")
        )


@blp.route("/pricing/proposals/<int:proposal_id>/reject")
class ProposalReject(MethodView):
    @blp.arguments(ProposalDecisionSchema)
    @blp.response(200, ProposalSchema)
    def post(self, body, proposal_id):
        """Reject a proposal (regulator)."""
        return parameters.decide(
            db.session, current_actor(), proposal_id, approve=False, note=body.get("note")
        )


def cap_report_body(report: revenue.CapReport, names: dict[str, str | None]) -> dict:
    return {
        "period": report.period,
        "next_period": report.next_period,
        "params_version": report.params_version,
        "basis": report.basis,
        "carried_from": report.carried_from,
        "currency": "CNY",
        "totals": {
            "revenue": report.total_revenue,
            "excess_to_deduct_next_period": report.total_excess,
        },
        "rows": [{**row.to_dict(), "party_name": names.get(row.party)} for row in report.rows],
    }


@blp.route("/pricing/revenue-caps")
class RevenueCaps(MethodView):
    @blp.arguments(RevenueCapArgsSchema, location="query")
    @blp.response(200, RevenueCapReportSchema)
    def get(self, args):
        """Revenue per category against its cap, and the excess to deduct next period
        (operator, regulator). Counts settled payments less refunds, in the month each happens."""
        account_perm.require(
            perm.can_view_revenue_caps(current_actor()),
            "Only the operator and the regulator see the revenue caps.",
        )
        report = revenue.revenue_cap_report(
            db.session, args.get("period") or revenue.current_period()
        )
        names = revenue.party_names(db.session, {row.party for row in report.rows})
        return cap_report_body(report, names)
