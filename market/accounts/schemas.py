from __future__ import annotations

import marshmallow as ma

from market.accounts.models import OrgKind


class TokenRequestSchema(ma.Schema):
    email = ma.fields.String(required=True, validate=ma.validate.Length(max=254))
    password = ma.fields.String(required=True, load_only=True, validate=ma.validate.Length(max=1024))


class TokenSchema(ma.Schema):
    token = ma.fields.String(required=True)
    expires_at = ma.fields.DateTime(required=True)


class OrganizationBriefSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    kind = ma.fields.String()


class OrganizationSchema(OrganizationBriefSchema):
    credit_code = ma.fields.String()
    status = ma.fields.String()
    created_at = ma.fields.DateTime()


class OrganizationCreateSchema(ma.Schema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    kind = ma.fields.String(required=True, validate=ma.validate.OneOf([k.value for k in OrgKind]))
    credit_code = ma.fields.String(required=True, validate=ma.validate.Length(equal=18))


class OrganizationListArgs(ma.Schema):
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1))
    per_page = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=100))
    kind = ma.fields.String(validate=ma.validate.OneOf([k.value for k in OrgKind]))
    status = ma.fields.String(validate=ma.validate.OneOf(["pending", "active", "refused"]))


class MeSchema(ma.Schema):
    id = ma.fields.Integer()
    email = ma.fields.String()
    organization = ma.fields.Nested(OrganizationSchema)
    #: "zh", "en", or null (not chosen).
    language = ma.fields.String(allow_none=True)


class MeUpdateSchema(ma.Schema):
    language = ma.fields.String(
        required=True, allow_none=True, validate=ma.validate.OneOf(["zh", "en"])
    )


class UserSchema(ma.Schema):
    id = ma.fields.Integer()
    email = ma.fields.String()
    organization = ma.fields.Nested(OrganizationBriefSchema)
    is_active = ma.fields.Boolean()
    created_at = ma.fields.DateTime()


class UserCreateSchema(ma.Schema):
    email = ma.fields.String(required=True, validate=ma.validate.Length(max=254))
    password = ma.fields.String(required=True, load_only=True, validate=ma.validate.Length(min=10, max=1024))
    organization_id = ma.fields.Integer(required=True)


class RegisterSchema(ma.Schema):
    organization_name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    credit_code = ma.fields.String(required=True, validate=ma.validate.Length(equal=18))
    kind = ma.fields.String(required=True, validate=ma.validate.OneOf(["buyer", "subject"]))
    email = ma.fields.String(required=True, validate=ma.validate.Length(max=254))
    password = ma.fields.String(required=True, load_only=True, validate=ma.validate.Length(min=10, max=1024))


class AdmissionSchema(ma.Schema):
    decision = ma.fields.String(required=True, validate=ma.validate.OneOf(["admit", "refuse"]))
    reason = ma.fields.String(load_default="", validate=ma.validate.Length(max=2000))


class LogoutEverywhereSchema(ma.Schema):
    sessions_ended = ma.fields.Integer(metadata={"description": "Browser sessions ended"})
    tokens_revoked = ma.fields.Integer(metadata={"description": "API tokens revoked"})
