from __future__ import annotations

from flask import current_app, g
from flask.views import MethodView
from flask_babel import gettext as _
from flask_smorest import Blueprint

from market.accounts import permissions as perm
from market.accounts import services, sessions
from market.accounts.schemas import (
    AdmissionSchema,
    LogoutEverywhereSchema,
    MeSchema,
    MeUpdateSchema,
    OrganizationCreateSchema,
    OrganizationListArgs,
    OrganizationSchema,
    RegisterSchema,
    TokenRequestSchema,
    TokenSchema,
    UserCreateSchema,
    UserSchema,
)
from market.api_base import PageArgs, page_of, paginate
from market.auth import LOGIN_RATE_LIMIT, current_actor, public, throttle_policy
from market.errors import NotFound
from market.extensions import db, limiter
from market.keys import pseudonym_key

blp = Blueprint("accounts_api", __name__, url_prefix="/api/v1", description="Identity and accounts")


@blp.route("/auth/token")
class AuthToken(MethodView):
    # One per-address bucket with the login form; the per-account backoff is in services.login.
    decorators = [limiter.shared_limit(LOGIN_RATE_LIMIT, scope="login", methods=["POST"])]

    @public
    @blp.arguments(TokenRequestSchema)
    @blp.response(201, TokenSchema)
    @blp.alt_response(429, description="Too many failed attempts for this account (see Retry-After).")
    def post(self, body):
        """Exchange e-mail and password for an API token."""
        user = services.login(
            db.session, body["email"], body["password"], key=pseudonym_key(),
            throttle=throttle_policy(),
        )
        token, row = services.issue_token(db.session, user, current_app.config["MARKET_TOKEN_TTL"])
        return {"token": token, "expires_at": row.expires_at}

    @blp.response(204)
    def delete(self):
        """Revoke the token this request is authenticated with."""
        actor = current_actor()
        if g.token is not None:
            services.revoke_token(db.session, g.token, actor)
        return None


@blp.route("/auth/logout-everywhere")
class LogoutEverywhere(MethodView):
    @blp.response(200, LogoutEverywhereSchema)
    def post(self):
        """End every browser session and revoke every API token of the caller (this one too)."""
        actor = current_actor()
        return sessions.logout_everywhere(db.session, g.user, actor)


@blp.route("/me")
class Me(MethodView):
    @blp.response(200, MeSchema)
    def get(self):
        """The caller and its organization."""
        current_actor()
        return g.user

    @blp.arguments(MeUpdateSchema)
    @blp.response(200, MeSchema)
    def patch(self, body):
        """Save the caller's language (``zh``, ``en``, or null to follow the browser)."""
        actor = current_actor()
        return services.set_language(db.session, actor, g.user, body["language"])


@blp.route("/organizations")
class Organizations(MethodView):
    @blp.arguments(OrganizationListArgs, location="query")
    @blp.response(200, page_of(OrganizationSchema))
    def get(self, args):
        """List organizations (operator, regulator)."""
        perm.require(perm.can_list_organizations(current_actor()))
        stmt = services.list_organizations(args.get("kind"), args.get("status"))
        return paginate(db.session, stmt, args["page"], args["per_page"])

    @blp.arguments(OrganizationCreateSchema)
    @blp.response(201, OrganizationSchema)
    def post(self, body):
        """Create an organization (operator). The credit code's check character is validated."""
        return services.create_organization(db.session, current_actor(), **body)


@blp.route("/organizations/<int:org_id>")
class OrganizationItem(MethodView):
    @blp.response(200, OrganizationSchema)
    def get(self, org_id):
        """One organization: the operator and regulator see any, others only their own."""
        actor = current_actor()
        if not perm.can_view_organization(actor, org_id):
            raise NotFound(_("No such organization."))
        return services.get_organization(db.session, org_id)


@blp.route("/users")
class Users(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_of(UserSchema))
    def get(self, args):
        """List users (operator, regulator)."""
        perm.require(perm.can_list_users(current_actor()))
        return paginate(db.session, services.list_users(), args["page"], args["per_page"])

    @blp.arguments(UserCreateSchema)
    @blp.response(201, UserSchema)
    def post(self, body):
        """Create a user in an organization (operator)."""
        return services.create_user(db.session, current_actor(), **body)


@blp.route("/register")
class Register(MethodView):
    decorators = [limiter.limit("10 per hour")]

    @public
    @blp.arguments(RegisterSchema)
    @blp.response(201, OrganizationSchema)
    def post(self, body):
        """Self-registration for a buyer or data subject; the organization starts pending."""
        org, _user = services.register(db.session, **body)
        return org


@blp.route("/organizations/<int:org_id>/admission")
class Admission(MethodView):
    @blp.arguments(AdmissionSchema)
    @blp.response(200, OrganizationSchema)
    def post(self, body, org_id):
        """Admit or refuse a pending organization (operator)."""
        return services.decide_admission(db.session, current_actor(), org_id, **body)
