"""Catalogue API (read-only): search with facets, one dataset, its synthetic preview and the
DCAT JSON-LD export. Publication (POST/PUT) lives in ``market.datasets.api``."""

from __future__ import annotations

import json
from typing import Any

import marshmallow as ma
import sqlalchemy as sa
from flask import Response, g, url_for
from flask.views import MethodView
from flask_smorest import Blueprint

from market.accounts.actor import ANONYMOUS
from market.accounts.models import Organization
from market.api_base import PageArgs
from market.auth import public
from market.datasets import catalog
from market.datasets.models import OpenGrade
from market.datasets.preview import DEFAULT_ROWS, MAX_ROWS
from market.datasets.schemas import DatasetSchema, VersionBriefSchema, displayed_version
from market.extensions import db

blp = Blueprint(
    "catalog_api",
    __name__,
    url_prefix="/api/v1",
    description="Catalogue: search, dataset pages, synthetic previews and the DCAT export",
)

_BANDS = [b[0] for b in catalog.QUALITY_BANDS] + [catalog.UNSCORED]


class CatalogArgs(PageArgs):
    q = ma.fields.String(
        load_default=None,
        validate=ma.validate.Length(max=200),
        metadata={
            "description": "Words that must all appear in the title, "
            "description, category, department or a column name."
        },
    )
    category = ma.fields.String(load_default=None, validate=ma.validate.Length(max=64))
    department_id = ma.fields.Integer(load_default=None)
    min_quality = ma.fields.Integer(load_default=None, validate=ma.validate.Range(min=0, max=100))
    open_grade = ma.fields.String(
        load_default=None,
        validate=ma.validate.OneOf([OpenGrade.open.value, OpenGrade.conditional.value]),
    )
    security_level = ma.fields.String(
        load_default=None, validate=ma.validate.OneOf(["general", "important"])
    )
    quality_band = ma.fields.String(
        load_default=None,
        validate=ma.validate.OneOf(_BANDS),
        metadata={"description": "excellent ≥90, good 75-89, fair 60-74, poor <60, unscored"},
    )
    sort = ma.fields.String(load_default="updated", validate=ma.validate.OneOf(catalog.SORTS))


class DepartmentRefSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()


class CatalogItemSchema(ma.Schema):
    """A search hit: the dataset with its current listed version's figures."""

    id = ma.fields.Integer()
    slug = ma.fields.String()
    title = ma.fields.String()
    description = ma.fields.String()
    category = ma.fields.String()
    open_grade = ma.fields.String()
    security_level = ma.fields.String()
    update_frequency = ma.fields.String(allow_none=True)
    status = ma.fields.String()
    department = ma.fields.Nested(DepartmentRefSchema)
    version = ma.fields.Function(lambda d: d.current_version.version if d.current_version else None)
    row_count = ma.fields.Function(
        lambda d: d.current_version.row_count if d.current_version else None
    )
    quality_score = ma.fields.Function(
        lambda d: d.current_version.quality_score if d.current_version else None
    )
    quality_band = ma.fields.Function(
        lambda d: catalog.quality_band(
            d.current_version.quality_score if d.current_version else None
        )
    )
    listed_at = ma.fields.DateTime(allow_none=True)
    updated_at = ma.fields.Method("_updated_at")

    def _updated_at(self, d: Any) -> str | None:
        moment = catalog.updated_at(d)
        return moment.isoformat() if moment else None


class FacetValueSchema(ma.Schema):
    value = ma.fields.String(metadata={"description": "The filter value to send back"})
    label = ma.fields.String(
        allow_none=True, metadata={"description": "Display name (departments)"}
    )
    count = ma.fields.Integer()


class FacetsSchema(ma.Schema):
    category = ma.fields.List(ma.fields.Nested(FacetValueSchema))
    department = ma.fields.List(ma.fields.Nested(FacetValueSchema))
    grade = ma.fields.List(ma.fields.Nested(FacetValueSchema))
    security_level = ma.fields.List(ma.fields.Nested(FacetValueSchema))
    quality_band = ma.fields.List(ma.fields.Nested(FacetValueSchema))


class CatalogPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(CatalogItemSchema), required=True)
    total = ma.fields.Integer(required=True)
    page = ma.fields.Integer(required=True)
    per_page = ma.fields.Integer(required=True)
    facets = ma.fields.Nested(
        FacetsSchema,
        metadata={
            "description": "Counts per value; each facet is counted with the other filters applied"
        },
    )


class DatasetDetailSchema(DatasetSchema):
    """The dataset (API.md fields) plus its version history.

    Everyone sees the versions that were listed; the owner, the operator and the regulator see
    every version, including processing, pending, rejected and refused ones.
    """

    versions = ma.fields.List(ma.fields.Nested(VersionBriefSchema), dump_only=True)

    @ma.post_dump(pass_original=True)
    def _visible_versions(self, data: dict[str, Any], original: Any, **_: Any) -> dict[str, Any]:
        actor = g.get("actor") or ANONYMOUS
        allowed = {v.id for v in catalog.visible_versions(actor, original)}
        data["versions"] = sorted(
            (v for v in data.get("versions") or [] if v["id"] in allowed),
            key=lambda v: v["version"],
            reverse=True,
        )
        if not catalog.can_view_versions(actor, original):
            # A version under review (or rejected, refused, processing) is not public: its
            # figures and refusal reasons stay with the department, operator and regulator.
            data["latest_version"] = data["versions"][0] if data["versions"] else None
            data["refusal_reasons"] = []
        return data


class PreviewArgs(ma.Schema):
    rows = ma.fields.Integer(
        load_default=DEFAULT_ROWS, validate=ma.validate.Range(min=1, max=MAX_ROWS)
    )


class PreviewColumnSchema(ma.Schema):
    name = ma.fields.String()
    type = ma.fields.String()
    pii_kind = ma.fields.String(allow_none=True)
    treatment = ma.fields.String()
    role = ma.fields.String()


class PreviewSchema(ma.Schema):
    synthetic = ma.fields.Boolean(metadata={"description": "Always true: generated, not real rows"})
    version = ma.fields.Integer(allow_none=True)
    columns = ma.fields.List(ma.fields.Nested(PreviewColumnSchema))
    rows = ma.fields.List(
        ma.fields.Dict(), metadata={"description": "Objects keyed by column name"}
    )


def catalog_query(args: dict[str, Any]) -> catalog.CatalogQuery:
    return catalog.CatalogQuery(
        q=(args.get("q") or "").strip() or None,
        category=args.get("category") or None,
        department_id=args.get("department_id"),
        min_quality=args.get("min_quality"),
        open_grade=args.get("open_grade") or None,
        security_level=args.get("security_level") or None,
        quality_band=args.get("quality_band") or None,
        sort=args.get("sort") or "updated",
        page=args.get("page", 1),
        per_page=args.get("per_page", catalog.DEFAULT_PER_PAGE),
    )


@blp.route("/datasets")
class Catalogue(MethodView):
    @public
    @blp.arguments(CatalogArgs, location="query")
    @blp.response(200, CatalogPageSchema)
    def get(self, args):
        """Search the listed datasets (anyone), with facet counts."""
        page = catalog.search(db.session, catalog_query(args))
        return {
            "items": page.items,
            "total": page.total,
            "page": page.page,
            "per_page": page.per_page,
            "facets": page.facets,
        }


@blp.route("/datasets/<int:dataset_id>")
class DatasetItem(MethodView):
    @public
    @blp.response(200, DatasetDetailSchema)
    def get(self, dataset_id: int):
        """One dataset (listed: anyone; before that: its department, operator, regulator)."""
        return catalog.get_visible(db.session, g.get("actor") or ANONYMOUS, dataset_id)


@blp.route("/datasets/<int:dataset_id>/preview")
class DatasetPreview(MethodView):
    @public
    @blp.arguments(PreviewArgs, location="query")
    @blp.response(200, PreviewSchema)
    def get(self, args, dataset_id: int):
        """Synthetic rows shaped like the dataset (``synthetic: true``), never real data."""
        dataset = catalog.get_visible(db.session, g.get("actor") or ANONYMOUS, dataset_id)
        preview = catalog.preview(dataset, rows=args["rows"])
        version = displayed_version(dataset)
        body = preview.to_dict() if preview else {"synthetic": True, "columns": [], "rows": []}
        return {**body, "version": version.version if version else None}


def catalog_urls() -> catalog.CatalogUrls:
    marker = 999_999_999
    page = url_for("datasets.detail", dataset_id=marker, _external=True)
    return catalog.CatalogUrls(
        catalog=url_for("catalog_api.CatalogJsonLd", _external=True),
        homepage=url_for("datasets.catalogue", _external=True),
        sandbox=url_for("web.index", _external=True).rstrip("/") + "/api/v1/sandbox",
        api_description=url_for("api-docs.openapi_json", _external=True),
        dataset_page=page.replace(str(marker), "{id}"),
        themes=url_for("governance_api.ThemeScheme", _external=True),
    )


def operator_name() -> str | None:
    return db.session.scalar(
        sa.select(Organization.name)
        .where(Organization.kind == "operator")
        .order_by(Organization.id)
        .limit(1)
    )


@blp.route("/catalog.jsonld")
class CatalogJsonLd(MethodView):
    @public
    @blp.response(200, content_type="application/ld+json", description="A dcat:Catalog document")
    def get(self):
        """The catalogue as DCAT-AP JSON-LD (listed datasets only; access via the sandbox)."""
        doc = catalog.dcat_catalog(db.session, catalog_urls(), operator_name())
        return Response(json.dumps(doc, ensure_ascii=False), mimetype="application/ld+json")
