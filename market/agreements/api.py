"""JSON API of authorization agreements (授权运营协议): a department proposes and signs, the
operator countersigns or declines, the regulator reads; the signed bundle downloads."""

from __future__ import annotations

import json

import marshmallow as ma
from flask import Response
from flask.views import MethodView
from flask_babel import gettext as _
from flask_smorest import Blueprint

from market.agreements import permissions as perm
from market.agreements import services
from market.agreements.models import AgreementStatus
from market.api_base import PageArgs, page_of, paginate
from market.auth import current_actor, public
from market.errors import Forbidden
from market.extensions import db
from market.web import validators as mv

blp = Blueprint(
    "agreements_api",
    __name__,
    url_prefix="/api/v1",
    description="Authorization agreements (授权运营协议) between departments and the operator",
)


class AgreementOrgSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    credit_code = ma.fields.String(allow_none=True)


class AgreementScopeSchema(ma.Schema):
    categories = ma.fields.List(ma.fields.String())
    dataset_ids = ma.fields.List(ma.fields.Integer())


class AgreementShareSchema(ma.Schema):
    department_bps = ma.fields.Integer()
    operator_bps = ma.fields.Integer()


class AgreementSignatureRefSchema(ma.Schema):
    key_id = ma.fields.String(allow_none=True)
    signed_at = ma.fields.String(allow_none=True)


class AgreementSignaturesSchema(ma.Schema):
    department = ma.fields.Nested(AgreementSignatureRefSchema, allow_none=True)
    operator = ma.fields.Nested(AgreementSignatureRefSchema, allow_none=True)


class AgreementSchema(ma.Schema):
    id = ma.fields.Integer()
    number = ma.fields.String()
    department = ma.fields.Nested(AgreementOrgSchema)
    scope = ma.fields.Nested(AgreementScopeSchema)
    starts_at = ma.fields.String()
    ends_at = ma.fields.String()
    revenue_share_bps = ma.fields.Integer()
    revenue_share = ma.fields.Nested(AgreementShareSchema)
    status = ma.fields.String()
    key_origin = ma.fields.String()
    signatures = ma.fields.Nested(AgreementSignaturesSchema)
    #: The document to sign (a draft) or that was signed.
    document = ma.fields.Dict()


class AgreementListArgs(PageArgs):
    status = ma.fields.String(
        load_default=None, validate=mv.OneOf([s.value for s in AgreementStatus])
    )


class AgreementCreateSchema(ma.Schema):
    categories = ma.fields.List(
        ma.fields.String(validate=mv.Length(min=1, max=services.MAX_CATEGORY)),
        load_default=list,
        validate=mv.Length(max=services.MAX_CATEGORIES),
    )
    dataset_ids = ma.fields.List(
        ma.fields.Integer(strict=True), load_default=list,
        validate=mv.Length(max=services.MAX_DATASETS),
    )
    starts_at = ma.fields.AwareDateTime(required=True)
    ends_at = ma.fields.AwareDateTime(required=True)
    revenue_share_bps = ma.fields.Integer(
        required=True, strict=True, validate=mv.Range(min=0, max=10_000)
    )
    #: ``custodial``: sign now with the key the platform holds for the department;
    #: ``registered``: create a draft to sign client-side with a registered key.
    signing = ma.fields.String(
        load_default="custodial", validate=mv.OneOf(["custodial", "registered"])
    )

    class Meta:
        unknown = ma.RAISE


class AgreementSignSchema(ma.Schema):
    key_id = ma.fields.String(required=True, validate=mv.Length(min=1, max=16))
    signature = ma.fields.String(required=True, validate=mv.Length(min=1, max=128))

    class Meta:
        unknown = ma.RAISE


class AgreementDeclineSchema(ma.Schema):
    reason = ma.fields.String(required=True, validate=mv.Length(min=1, max=1000))

    class Meta:
        unknown = ma.RAISE


class AgreementKeyCreateSchema(ma.Schema):
    public_key = ma.fields.String(required=True, validate=mv.Length(min=1, max=64))

    class Meta:
        unknown = ma.RAISE


class AgreementKeySchema(ma.Schema):
    key_id = ma.fields.String()
    department_id = ma.fields.Integer(attribute="organization_id")
    public_key = ma.fields.String()
    registered_at = ma.fields.Function(lambda k: services.iso(k.registered_at))
    revoked_at = ma.fields.Function(lambda k: services.iso(k.revoked_at))
    revocation_reason = ma.fields.String(allow_none=True)


class AgreementKeyListArgs(ma.Schema):
    #: The operator and the regulator: one department's keys (all departments' without it).
    department_id = ma.fields.Integer(load_default=None, strict=False)


class AgreementKeyRevokeSchema(ma.Schema):
    reason = ma.fields.String(required=True, validate=mv.Length(min=1, max=1000))
    #: The operator names the department; a department revokes its own keys only.
    department_id = ma.fields.Integer(load_default=None, strict=True)

    class Meta:
        unknown = ma.RAISE


class KeyStateSchema(ma.Schema):
    key_id = ma.fields.String(allow_none=True)
    origin = ma.fields.String(allow_none=True)
    registered = ma.fields.Boolean(allow_none=True)
    revoked_at = ma.fields.String(allow_none=True)
    signed_before_revocation = ma.fields.Boolean(allow_none=True)


class AgreementVerificationSchema(ma.Schema):
    valid = ma.fields.Boolean()
    countersigned = ma.fields.Boolean()
    department_signature = ma.fields.Boolean()
    operator_signature = ma.fields.Boolean(allow_none=True)
    department_key = ma.fields.Nested(KeyStateSchema)
    #: Stable codes: ``department_signature``, ``operator_signature``, ``key_not_registered``,
    #: ``signed_after_revocation``.
    problems = ma.fields.List(ma.fields.String())


class BundleCheckSchema(ma.Schema):
    """A downloaded agreement bundle, as ``GET /agreements/{id}/document`` serves it."""

    document = ma.fields.Dict(required=True)
    department_signature = ma.fields.Dict(required=True, allow_none=True)
    operator_signature = ma.fields.Dict(load_default=None, allow_none=True)
    key_origin = ma.fields.String(
        load_default=None, allow_none=True, validate=mv.OneOf(["registered", "custodial"])
    )

    class Meta:
        unknown = ma.EXCLUDE


class BundleVerificationSchema(ma.Schema):
    valid = ma.fields.Boolean()
    on_record = ma.fields.Boolean()
    agreement_id = ma.fields.Integer(allow_none=True)
    number = ma.fields.String(allow_none=True)
    department_signature = ma.fields.Boolean()
    operator_signature = ma.fields.Boolean()
    department_key = ma.fields.Dict(allow_none=True)
    #: Stable codes: those of the verification plus ``not_on_record`` and ``signature``.
    problems = ma.fields.List(ma.fields.String())


class AgreementKeyListSchema(ma.Schema):
    keys = ma.fields.List(ma.fields.Nested(AgreementKeySchema))


@blp.route("/agreements")
class Agreements(MethodView):
    @blp.arguments(AgreementListArgs, location="query")
    @blp.response(200, page_of(AgreementSchema))
    def get(self, args):
        """Agreements: a department its own, the operator and the regulator all."""
        stmt = services.list_agreements(db.session, current_actor(), status=args["status"])
        page = paginate(db.session, stmt, args["page"], args["per_page"])
        page["items"] = [services.summary(a) for a in page["items"]]
        return page

    @blp.arguments(AgreementCreateSchema)
    @blp.response(201, AgreementSchema)
    def post(self, body):
        """A department proposes an agreement: scope, term and its revenue share in basis
        points (department)."""
        actor = current_actor()
        # The caller first: who may not propose learns nothing of the field rules.
        if not perm.can_propose(actor):
            raise Forbidden(_("Only a department proposes authorization agreements."))
        terms = services.Terms(
            categories=body["categories"],
            dataset_ids=body["dataset_ids"],
            starts_at=body["starts_at"],
            ends_at=body["ends_at"],
            revenue_share_bps=body["revenue_share_bps"],
        )
        agreement = services.propose(
            db.session, actor, terms, custodial=body["signing"] == "custodial"
        )
        return services.summary(agreement)


@blp.route("/agreements/keys")
class AgreementKeys(MethodView):
    @blp.arguments(AgreementKeyListArgs, location="query")
    @blp.response(200, AgreementKeyListSchema)
    def get(self, args):
        """Registered signing keys: a department its own; the operator and the regulator every
        department's (``?department_id=`` for one)."""
        return {"keys": services.keys_for(db.session, current_actor(), args["department_id"])}

    @blp.arguments(AgreementKeyCreateSchema)
    @blp.response(201, AgreementKeySchema)
    def post(self, body):
        """Register the public half of a key the department signs agreements with
        (department)."""
        actor = current_actor()
        if not perm.can_propose(actor):
            raise Forbidden(_("Only a department registers agreement signing keys."))
        return services.register_key(db.session, actor, body["public_key"])


@blp.route("/agreements/<int:agreement_id>")
class AgreementOne(MethodView):
    @blp.response(200, AgreementSchema)
    def get(self, agreement_id):
        """One agreement (its department, the operator, the regulator)."""
        return services.summary(services.get_agreement(db.session, current_actor(), agreement_id))


@blp.route("/agreements/<int:agreement_id>/document")
class AgreementDocument(MethodView):
    @blp.response(200)
    def get(self, agreement_id):
        """The signed agreement to keep and verify offline: ``{document, department_signature,
        operator_signature, key_origin}`` (docs/license-verification.md)."""
        agreement = services.get_agreement(db.session, current_actor(), agreement_id)
        body = json.dumps(services.bundle(agreement), ensure_ascii=False, indent=2)
        response = Response(body, mimetype="application/json")
        response.headers["Content-Disposition"] = (
            f'attachment; filename="{agreement.number}.json"'
        )
        return response


@blp.route("/agreements/<int:agreement_id>/sign")
class AgreementSign(MethodView):
    @blp.arguments(AgreementSignSchema)
    @blp.response(200, AgreementSchema)
    def post(self, body, agreement_id):
        """The department's client-side signature of a draft, with a registered key
        (department)."""
        actor = current_actor()
        agreement = services.get_agreement(db.session, actor, agreement_id)
        if not perm.can_sign(actor, agreement):
            raise Forbidden(_("Only the department that wrote the agreement signs it."))
        agreement = services.sign_registered(
            db.session, actor, agreement_id, key_id_=body["key_id"],
            signature=body["signature"],
        )
        return services.summary(agreement)


@blp.route("/agreements/<int:agreement_id>/countersign")
class AgreementCountersign(MethodView):
    @blp.response(200, AgreementSchema)
    def post(self, agreement_id):
        """The operator countersigns: the agreement becomes active (operator)."""
        return services.summary(services.countersign(db.session, current_actor(), agreement_id))


@blp.route("/agreements/<int:agreement_id>/decline")
class AgreementDecline(MethodView):
    @blp.arguments(AgreementDeclineSchema)
    @blp.response(200, AgreementSchema)
    def post(self, body, agreement_id):
        """The operator declines to countersign, with the reason (operator)."""
        actor = current_actor()
        if not perm.can_countersign(actor):
            raise Forbidden(_("Only the operator countersigns agreements."))
        agreement = services.decline(db.session, actor, agreement_id, body["reason"])
        return services.summary(agreement)


@blp.route("/agreements/keys/<string:key_id>/revoke")
class AgreementKeyRevoke(MethodView):
    @blp.arguments(AgreementKeyRevokeSchema)
    @blp.response(200, AgreementKeySchema)
    def post(self, body, key_id):
        """Revoke a registered signing key (lost or stolen), with the reason: no signature by
        it is accepted from now on; agreements it signed before stay valid and say so (the
        department for its own keys, the operator for any department's)."""
        actor = current_actor()
        if not (perm.can_propose(actor) or perm.can_countersign(actor)):
            raise Forbidden(_("Only the department itself or the operator revokes a signing key."))
        return services.revoke_key(
            db.session, actor, key_id, reason=body["reason"], department_id=body["department_id"]
        )


@blp.route("/agreements/<int:agreement_id>/verification")
class AgreementVerification(MethodView):
    @blp.response(200, AgreementVerificationSchema)
    def get(self, agreement_id):
        """The platform's check of a stored agreement: both signatures and the department key's
        revocation (its department, the operator, the regulator)."""
        agreement = services.get_agreement(db.session, current_actor(), agreement_id)
        return services.verify_agreement(db.session, agreement)


@blp.route("/agreements/verify")
class AgreementBundleVerify(MethodView):
    @public
    @blp.arguments(BundleCheckSchema)
    @blp.response(200, BundleVerificationSchema)
    def post(self, body):
        """Check a downloaded agreement against the platform's record (anyone): the
        signatures, that the platform holds exactly this agreement, and the department key's
        revocation (a signature by a revoked key that the platform did not receive before the
        revocation fails)."""
        return services.verify_submitted_bundle(db.session, body)
