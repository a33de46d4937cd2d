"""API of a dataset after publication: edit its metadata (wording at once, the price-relevant
fields through the operator's review), review a change, withdraw it.

The pages in ``lifecycle_views`` call the same services (``market.datasets.lifecycle``).
"""

from __future__ import annotations

import marshmallow as ma
import sqlalchemy as sa
from flask.views import MethodView
from flask_babel import gettext as _
from flask_smorest import Blueprint

import pricing
from market.auth import current_actor
from market.datasets import lifecycle
from market.datasets import permissions as perms
from market.datasets.models import Dataset, DatasetChangeRequest
from market.datasets.schemas import UPDATE_FREQUENCIES, DatasetCostsLoadSchema, DatasetSchema
from market.errors import NotFound
from market.extensions import db

blp = Blueprint(
    "dataset_lifecycle_api", __name__, url_prefix="/api/v1",
    description="A dataset after publication: metadata edits, their review, withdrawal",
)


class DatasetEditSchema(ma.Schema):
    """Any of the fields; those left out are unchanged."""

    title = ma.fields.String(validate=ma.validate.Length(min=1, max=200))
    description = ma.fields.String(validate=ma.validate.Length(max=10_000))
    update_frequency = ma.fields.String(validate=ma.validate.OneOf(UPDATE_FREQUENCIES))
    category = ma.fields.String(
        validate=ma.validate.OneOf(pricing.CATEGORIES, error="Unknown category; use one of: {choices}.")
    )
    costs = ma.fields.Nested(DatasetCostsLoadSchema)

    class Meta:
        unknown = ma.RAISE

    @ma.validates_schema
    def _title_not_blank(self, data, **_kw):
        if "title" in data and not data["title"].strip():
            raise ma.ValidationError({"title": [_("must not be blank")]})


class ChangeRequestSchema(ma.Schema):
    id = ma.fields.Integer()
    dataset_id = ma.fields.Integer()
    status = ma.fields.String(metadata={"description": "pending, approved, rejected, withdrawn"})
    changes = ma.fields.Dict()
    before = ma.fields.Dict()
    proposed_at = ma.fields.DateTime()
    reviewed_at = ma.fields.DateTime(allow_none=True)
    review_comment = ma.fields.String(allow_none=True)


class EditResultSchema(ma.Schema):
    dataset = ma.fields.Nested(DatasetSchema)
    applied = ma.fields.List(ma.fields.String(), metadata={"description": "fields now in force"})
    change_request = ma.fields.Nested(
        ChangeRequestSchema, allow_none=True,
        metadata={"description": "the fields awaiting the operator's review, if any"},
    )


class ChangeReviewSchema(ma.Schema):
    decision = ma.fields.String(required=True, validate=ma.validate.OneOf(["approve", "reject"]))
    comment = ma.fields.String(load_default="", validate=ma.validate.Length(max=2000))


class WithdrawSchema(ma.Schema):
    reason = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=2000))


def _dataset(dataset_id: int) -> Dataset:
    dataset = db.session.get(Dataset, dataset_id)
    if dataset is None or not perms.can_read_dataset(current_actor(), dataset):
        raise NotFound(_("Dataset %(id)s does not exist.", id=dataset_id))
    return dataset


@blp.route("/datasets/<int:dataset_id>/metadata")
class DatasetMetadata(MethodView):
    @blp.arguments(DatasetEditSchema)
    @blp.response(200, EditResultSchema)
    def put(self, body, dataset_id):
        """Edit a dataset's metadata (owning department).

        Title, description and update frequency apply at once; category and costs change the
        price, so they become a change request that applies when the operator approves it
        (``applied`` and ``change_request`` say which is which). 409 once withdrawn.
        """
        actor = current_actor()
        dataset = _dataset(dataset_id)
        lifecycle.require_owner(actor, dataset)  # the caller first: then the body is read
        result = lifecycle.edit_metadata(
            db.session, actor, dataset, lifecycle.MetadataEdit.from_dict(body)
        )
        return {"dataset": dataset, "applied": sorted(result.applied),
                "change_request": result.change_request}


@blp.route("/datasets/<int:dataset_id>/changes")
class DatasetChanges(MethodView):
    @blp.response(200, ChangeRequestSchema(many=True))
    def get(self, dataset_id):
        """A dataset's change requests, newest first (owning department, operator, regulator)."""
        dataset = _dataset(dataset_id)
        actor = current_actor()
        if not perms.can_view_versions(actor, dataset):
            from market.errors import Forbidden

            raise Forbidden(_("Only the owning department, the operator and the regulator see changes."))
        return db.session.scalars(
            sa.select(DatasetChangeRequest)
            .where(DatasetChangeRequest.dataset_id == dataset.id)
            .order_by(DatasetChangeRequest.id.desc())
        ).all()


@blp.route("/datasets/<int:dataset_id>/changes/review")
class DatasetChangeReview(MethodView):
    @blp.arguments(ChangeReviewSchema)
    @blp.response(200, ChangeRequestSchema)
    def post(self, body, dataset_id):
        """Approve (the changes apply now) or reject, with a comment, the pending change
        (operator). 409 if nothing is pending."""
        return lifecycle.review_change(
            db.session, current_actor(), _dataset(dataset_id), body["decision"], body["comment"]
        )


@blp.route("/datasets/<int:dataset_id>/withdraw")
class DatasetWithdraw(MethodView):
    @blp.arguments(WithdrawSchema)
    @blp.response(200, DatasetSchema)
    def post(self, body, dataset_id):
        """Withdraw a dataset (owning department): it leaves the catalogue for good, no new
        quote, license or version is possible, and licenses already granted run to their end.
        409 if already withdrawn or a version is being processed."""
        return lifecycle.withdraw(db.session, current_actor(), _dataset(dataset_id), body["reason"])
