"""JSON API of scenarios (场景机会清单) and data products (数据产品)."""

from __future__ import annotations

from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint

from licenses.ledger import period_bounds
from licenses.schemas import LicenseSchema, license_view
from market.accounts.actor import ANONYMOUS
from market.api_base import page_of, paginate
from market.auth import current_actor, public
from market.extensions import db
from market.scenarios import schemas as s
from market.scenarios import services
from market.scenarios.present import product_view, scenario_view


def _caller():
    """The caller of a public view: a signed-in actor, or the anonymous one."""
    return g.get("actor") or ANONYMOUS


blp = Blueprint(
    "scenarios_api",
    __name__,
    url_prefix="/api/v1",
    description="Scenarios (场景机会清单) and data products (数据产品)",
)


@blp.route("/scenarios")
class Scenarios(MethodView):
    @public
    @blp.arguments(s.ScenarioListArgs, location="query")
    @blp.response(200, page_of(s.ScenarioSchema))
    def get(self, args):
        """List scenarios: approved ones for anyone, every state for the operator and the
        regulator (``status`` filters)."""
        stmt = services.list_scenarios(_caller(), args.get("status"))
        page = paginate(db.session, stmt, args["page"], args["per_page"])
        page["items"] = [scenario_view(x) for x in page["items"]]
        return page

    @blp.arguments(s.ScenarioWriteSchema)
    @blp.response(201, s.ScenarioSchema)
    def post(self, body):
        """Draft a scenario with its datasets and allowed purposes (operator)."""
        scenario = services.create_scenario(db.session, current_actor(), **body)
        return scenario_view(scenario)


@blp.route("/scenarios/<int:scenario_id>")
class ScenarioItem(MethodView):
    @public
    @blp.response(200, s.ScenarioSchema)
    def get(self, scenario_id):
        """One scenario (approved for anyone; any state for the operator and the regulator)."""
        return scenario_view(services.get_scenario(db.session, _caller(), scenario_id))

    @blp.arguments(s.ScenarioReviseSchema)
    @blp.response(200, s.ScenarioSchema)
    def put(self, body, scenario_id):
        """Revise a draft or rejected scenario; it becomes a draft again (operator)."""
        actor = current_actor()
        services.authorize(db.session, actor, "revise", scenario_id)
        body.pop("code", None)
        scenario = services.revise_scenario(db.session, actor, scenario_id, **body)
        return scenario_view(scenario)


@blp.route("/scenarios/<int:scenario_id>/submit")
class ScenarioSubmit(MethodView):
    @blp.response(200, s.ScenarioSchema)
    def post(self, scenario_id):
        """Submit a draft scenario to the regulator (operator)."""
        return scenario_view(services.submit_scenario(db.session, current_actor(), scenario_id))


@blp.route("/scenarios/<int:scenario_id>/withdraw")
class ScenarioWithdraw(MethodView):
    @blp.arguments(s.ScenarioWithdrawSchema)
    @blp.response(200, s.ScenarioSchema)
    def post(self, body, scenario_id):
        """Withdraw an approved scenario, with the reason: no new license under it, licenses
        granted before run to their end (operator or regulator)."""
        actor = current_actor()
        services.authorize(db.session, actor, "withdraw", scenario_id)
        scenario = services.withdraw_scenario(db.session, actor, scenario_id, body["reason"])
        return scenario_view(scenario)


@blp.route("/scenarios/<int:scenario_id>/decision")
class ScenarioDecision(MethodView):
    @blp.arguments(s.DecisionSchema)
    @blp.response(200, s.ScenarioSchema)
    def post(self, body, scenario_id):
        """Approve or reject a pending scenario; a rejection needs a comment (regulator)."""
        actor = current_actor()
        services.authorize(db.session, actor, "decide", scenario_id)
        scenario = services.decide_scenario(
            db.session, actor, scenario_id, body["decision"], body["comment"]
        )
        return scenario_view(scenario)


@blp.route("/products")
class Products(MethodView):
    @public
    @blp.arguments(s.ProductListArgs, location="query")
    @blp.response(200, page_of(s.ProductSchema))
    def get(self, args):
        """List data products with their one price: published ones for anyone, every state for
        the operator and the regulator."""
        stmt = services.list_products(_caller(), args.get("status"))
        page = paginate(db.session, stmt, args["page"], args["per_page"])
        page["items"] = [product_view(db.session, x) for x in page["items"]]
        return page

    @blp.arguments(s.ProductWriteSchema)
    @blp.response(201, s.ProductSchema)
    def post(self, body):
        """Compose a draft data product: datasets, columns, access and terms (operator)."""
        services.authorize(db.session, current_actor(), "compose")
        items = [
            services.ItemSpec(
                i["dataset_id"], tuple(i["columns"]) if i["columns"] is not None else None
            )
            for i in body.pop("items")
        ]
        product = services.create_product(db.session, current_actor(), items=items, **body)
        return product_view(db.session, product)


@blp.route("/products/<int:product_id>")
class ProductItem(MethodView):
    @public
    @blp.response(200, s.ProductSchema)
    def get(self, product_id):
        """One data product with its price (published for anyone; any state for the operator
        and the regulator)."""
        return product_view(db.session, services.get_product(db.session, _caller(), product_id))


@blp.route("/products/<int:product_id>/status")
class ProductStatusChange(MethodView):
    @blp.arguments(s.ProductActionSchema)
    @blp.response(200, s.ProductSchema)
    def post(self, body, product_id):
        """Publish a draft product or withdraw a published one (operator)."""
        product = services.set_product_status(
            db.session, current_actor(), product_id, body["action"]
        )
        return product_view(db.session, product)


@blp.route("/products/<int:product_id>/apply")
class ProductApply(MethodView):
    @blp.arguments(s.ApplySchema)
    @blp.response(201, LicenseSchema)
    def post(self, body, product_id):
        """Apply for a data product under an approved scenario (buyer): the product is quoted
        and the ordinary license application follows; the license records both."""
        lic = services.apply_for_product(db.session, current_actor(), product_id=product_id, **body)
        return license_view(lic)


@blp.route("/scenarios/revenue")
class ScenarioRevenue(MethodView):
    @blp.arguments(s.RevenueArgs, location="query")
    @blp.response(200, s.RevenueSchema)
    def get(self, args):
        """Departments' revenue in a month, grouped by scenario and product (operator,
        regulator; a department its own share)."""
        actor = current_actor()
        services.authorize(db.session, actor, "revenue")
        start, end = period_bounds(args["period"])
        rows = services.revenue_by_scenario(db.session, actor, start, end)
        return {"period": args["period"], "rows": [r.__dict__ for r in rows]}
