"""JSON API of governance: the public red and black lists (红黑榜), the public signed license
status list, registration certificates and the catalogue's theme taxonomy."""

from __future__ import annotations

import json

import marshmallow as ma
from flask import Response, url_for
from flask.views import MethodView
from flask_babel import gettext as _
from flask_smorest import Blueprint

from market.auth import current_actor, public
from market.datasets.dcat import theme_scheme_jsonld
from market.extensions import db
from market.governance import services
from market.governance.pdf import certificate_pdf
from market.web import validators as mv

blp = Blueprint(
    "governance_api",
    __name__,
    url_prefix="/api/v1",
    description="Governance: red and black lists, license status list, registration certificates",
)


class ListOrganizationSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    credit_code = ma.fields.String(allow_none=True)


class ListEntrySchema(ma.Schema):
    id = ma.fields.Integer()
    organization = ma.fields.Nested(ListOrganizationSchema, allow_none=True)
    subject = ma.fields.String(allow_none=True)
    kind = ma.fields.String()
    reason = ma.fields.String()
    since = ma.fields.String()
    until = ma.fields.String(allow_none=True)


class ListsSchema(ma.Schema):
    red = ma.fields.List(ma.fields.Nested(ListEntrySchema))
    black = ma.fields.List(ma.fields.Nested(ListEntrySchema))


class ListAddSchema(ma.Schema):
    organization_id = ma.fields.Integer(load_default=None, allow_none=True, strict=True)
    subject = ma.fields.String(
        load_default=None, allow_none=True, validate=mv.Length(max=services.MAX_SUBJECT)
    )
    reason = ma.fields.String(required=True, validate=mv.Length(min=1, max=services.MAX_REASON))
    until = ma.fields.AwareDateTime(load_default=None, allow_none=True)

    class Meta:
        unknown = ma.RAISE


class ListReasonSchema(ma.Schema):
    reason = ma.fields.String(required=True, validate=mv.Length(min=1, max=services.MAX_REASON))


class StatusEntrySchema(ma.Schema):
    id = ma.fields.Integer()
    status = ma.fields.String()


class StatusListSchema(ma.Schema):
    issued_at = ma.fields.String()
    licenses = ma.fields.List(ma.fields.Nested(StatusEntrySchema))
    signature = ma.fields.String()
    public_key_id = ma.fields.String()


class CertificateArgs(ma.Schema):
    format = ma.fields.String(load_default="json", validate=mv.OneOf(["json", "pdf"]))


def _entry_dict(entry: services.PublicEntry) -> dict:
    return entry.as_dict()


@blp.route("/lists")
class Lists(MethodView):
    @public
    @blp.response(200, ListsSchema)
    def get(self):
        """The public red and black lists (红黑榜), entries in force only (anyone)."""
        lists = services.public_lists(db.session)
        return {name: [_entry_dict(e) for e in entries] for name, entries in lists.items()}


@blp.route("/lists/<list_name>")
class ListAdd(MethodView):
    @blp.arguments(ListAddSchema)
    @blp.response(201, ListEntrySchema)
    def post(self, body, list_name):
        """Put a buyer organization (``organization_id``) or a scenario/project (``subject``) on
        the red or black list, with a reason and an optional term ``until`` (regulator)."""
        entry = services.add_entry(
            db.session,
            current_actor(),
            list_name,
            organization_id=body["organization_id"],
            subject=body["subject"],
            reason=body["reason"],
            until=body["until"],
        )
        return _entry_dict(entry)


@blp.route("/lists/<list_name>/<int:organization_id>")
class ListRemoveOrganization(MethodView):
    @blp.arguments(ListReasonSchema)
    @blp.response(204)
    def delete(self, body, list_name, organization_id):
        """Take an organization off the red or black list, with the reason (regulator)."""
        services.remove_entry(
            db.session,
            current_actor(),
            list_name,
            organization_id=organization_id,
            reason=body["reason"],
        )
        return None


@blp.route("/lists/<list_name>/subjects/<int:entry_id>")
class ListRemoveSubject(MethodView):
    @blp.arguments(ListReasonSchema)
    @blp.response(204)
    def delete(self, body, list_name, entry_id):
        """Take a scenario/project entry off the red or black list, with the reason
        (regulator)."""
        services.require_entry(db.session, current_actor(), list_name, entry_id)
        services.remove_entry(
            db.session, current_actor(), list_name, entry_id=entry_id, reason=body["reason"]
        )
        return None


@blp.route("/licenses/status")
class LicenseStatusList(MethodView):
    @public
    @blp.response(200, StatusListSchema)
    def get(self):
        """The signed status of every license (anyone): ``{issued_at, licenses: [{id,
        status}], signature, public_key_id}``; the signature covers ``{issued_at, licenses}``."""
        return services.license_status_list(db.session)


class RegulatorReviewSchema(ma.Schema):
    decision = ma.fields.String(required=True, validate=mv.OneOf(["approve", "reject"]))
    comment = ma.fields.String(load_default="", validate=mv.Length(max=services.MAX_REASON))


class RegulatorDecisionSchema(ma.Schema):
    license_id = ma.fields.Integer()
    decision = ma.fields.String()
    comment = ma.fields.String(allow_none=True)
    decided_at = ma.fields.DateTime()


@blp.route("/licenses/<int:license_id>/regulator-review")
class LicenseRegulatorReview(MethodView):
    @blp.arguments(RegulatorReviewSchema)
    @blp.response(200, RegulatorDecisionSchema)
    def post(self, body, license_id):
        """The regulator approves or rejects a license application over important data (重要数据);
        the operator's approval also needs it (regulator)."""
        # The caller and the license first: the body's rules are for those who may use it.
        services.require_reviewable(db.session, current_actor(), license_id)
        return services.regulator_review(db.session, current_actor(), license_id, **body)


def certificate_labels() -> dict[str, str]:
    return {
        "number": _("Registration number"),
        "title": _("Dataset"),
        "dataset_id": _("Dataset id"),
        "version": _("Version"),
        "department": _("Department"),
        "department_credit_code": _("Unified social credit code"),
        "security_level": _("Security level (GB/T 43697-2024)"),
        "open_grade": _("Open grade"),
        "quality": _("Quality score"),
        "row_count": _("Rows"),
        "sha256": _("SHA-256 of the stored Parquet file"),
        "issued_at": _("Issued at (UTC)"),
    }


@blp.route("/datasets/<int:dataset_id>/certificate")
class DatasetCertificate(MethodView):
    @public
    @blp.arguments(CertificateArgs, location="query")
    @blp.response(200, description="The signed registration certificate, JSON or PDF")
    def get(self, args, dataset_id):
        """The registration certificate (数据资产登记) of a listed dataset's current version
        (anyone): ``{certificate, signature, public_key_id}``; ``?format=pdf`` for the PDF."""
        cert = services.certificate_for(db.session, dataset_id)
        signed = services.signed_certificate(cert)
        if args["format"] == "pdf":
            body = certificate_pdf(
                signed, certificate_labels(), _("Data asset registration certificate")
            )
            response = Response(body, mimetype="application/pdf")
            response.headers["Content-Disposition"] = (
                f'attachment; filename="certificate-{cert.number}.pdf"'
            )
            return response
        return Response(json.dumps(signed, ensure_ascii=False), mimetype="application/json")


@blp.route("/catalog/themes.jsonld")
class ThemeScheme(MethodView):
    @public
    @blp.response(200, content_type="application/ld+json", description="A skos:ConceptScheme")
    def get(self):
        """The catalogue's theme taxonomy (``skos:ConceptScheme``, DCAT-AP themes)."""
        from market.datasets.models import Dataset, VersionStatus

        # Listed datasets only: an unlisted dataset's category is nobody else's business.
        categories = db.session.scalars(
            db.select(Dataset.category).where(Dataset.status == VersionStatus.listed).distinct()
        ).all()
        uri = url_for("governance_api.ThemeScheme", _external=True)
        doc = theme_scheme_jsonld(uri, [c for c in categories if c])
        return Response(json.dumps(doc, ensure_ascii=False), mimetype="application/ld+json")
