"""JSON API of security-level changes (GB/T 43697-2024) after upload: the department asks,
raising applies at once, lowering waits for the operator's and the regulator's approval."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from market.api_base import PageArgs, page_of, paginate
from market.auth import current_actor
from market.extensions import db
from market.governance import levels
from market.web import validators as mv

blp = Blueprint(
    "levels_api",
    __name__,
    url_prefix="/api/v1",
    description="Changing a dataset's security level (GB/T 43697-2024 数据分级) after upload",
)


class LevelChangeRequestSchema(ma.Schema):
    #: ``general`` or ``important``; ``core`` is refused (``errors.rule = core_data``).
    to_level = ma.fields.String(required=True, validate=mv.Length(min=1, max=16))
    reason = ma.fields.String(required=True, validate=mv.Length(min=1, max=levels.MAX_TEXT))

    class Meta:
        unknown = ma.RAISE


class LevelChangeDecisionSchema(ma.Schema):
    decision = ma.fields.String(required=True, validate=mv.OneOf(["approve", "reject"]))
    comment = ma.fields.String(
        load_default=None, allow_none=True, validate=mv.Length(max=levels.MAX_TEXT)
    )

    class Meta:
        unknown = ma.RAISE


class LevelChangeListArgs(PageArgs):
    dataset_id = ma.fields.Integer(load_default=None)
    status = ma.fields.String(
        load_default=None, validate=mv.OneOf([levels.PENDING, levels.APPLIED, levels.REJECTED])
    )


class LevelChangeSchema(ma.Schema):
    id = ma.fields.Integer()
    dataset_id = ma.fields.Integer()
    from_level = ma.fields.String()
    to_level = ma.fields.String()
    reason = ma.fields.String()
    #: ``pending`` (a lowering awaiting approvals), ``applied`` or ``rejected``.
    status = ma.fields.String()
    requested_at = ma.fields.String()
    operator_decision = ma.fields.String(allow_none=True)
    operator_at = ma.fields.String(allow_none=True)
    regulator_decision = ma.fields.String(allow_none=True)
    regulator_at = ma.fields.String(allow_none=True)
    comment = ma.fields.String(allow_none=True)
    applied_at = ma.fields.String(allow_none=True)


@blp.route("/datasets/<int:dataset_id>/security-level")
class DatasetSecurityLevel(MethodView):
    @blp.arguments(LevelChangeRequestSchema)
    @blp.response(201, LevelChangeSchema)
    def post(self, body, dataset_id):
        """Ask to change the dataset's security level (its department): raising to important
        applies at once; lowering waits for the operator and the regulator; core is
        refused."""
        change = levels.request_change(
            db.session, current_actor(), dataset_id, body["to_level"], body["reason"]
        )
        return levels.change_view(change)


@blp.route("/security-level-changes")
class LevelChanges(MethodView):
    @blp.arguments(LevelChangeListArgs, location="query")
    @blp.response(200, page_of(LevelChangeSchema))
    def get(self, args):
        """Requests: a department its datasets', the operator and the regulator all."""
        stmt = levels.list_changes(
            current_actor(), dataset_id=args["dataset_id"], status=args["status"]
        )
        page = paginate(db.session, stmt, args["page"], args["per_page"])
        page["items"] = [levels.change_view(c) for c in page["items"]]
        return page


@blp.route("/security-level-changes/<int:change_id>/decision")
class LevelChangeDecision(MethodView):
    @blp.arguments(LevelChangeDecisionSchema)
    @blp.response(200, LevelChangeSchema)
    def post(self, body, change_id):
        """Approve or reject a lowering (operator, regulator: both must approve; a rejection
        needs a comment)."""
        actor = current_actor()
        if not levels.can_decide(actor):
            from flask_babel import gettext as _

            from market.errors import Forbidden

            raise Forbidden(_("Only the operator and the regulator decide on a lower security level."))
        change = levels.decide_change(
            db.session, actor, change_id, body["decision"], body["comment"]
        )
        return levels.change_view(change)
