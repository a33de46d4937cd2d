"""The consents and lookups API (授权查询): thin views over ``services`` and ``lookups``."""

from __future__ import annotations

from flask import current_app, g
from flask.views import MethodView
from flask_limiter.util import get_remote_address
from flask_smorest import Blueprint

from market.api_base import PageArgs, page_of, paginate
from market.auth import current_actor
from market.consents import lookups, services
from market.consents.records import DEFAULT_ROW_LIMIT
from market.consents.schemas import (
    AccessEntrySchema,
    ConsentCreateSchema,
    ConsentDecisionSchema,
    ConsentListArgs,
    ConsentRecordSchema,
    ConsentSchema,
    LookupCreateSchema,
    LookupLogSchema,
    LookupResultSchema,
)
from market.extensions import db, limiter
from market.keys import pseudonym_key
from market.storage import storage

blp = Blueprint(
    "consents_api",
    __name__,
    url_prefix="/api/v1",
    description="Consented lookups (授权查询): a bank reads one enterprise's records with its "
    "authorization",
)

#: Lookups per buyer organization unless ``MARKET_LOOKUP_RATE_LIMIT`` says otherwise.
DEFAULT_LOOKUP_RATE_LIMIT = "30 per minute"


def _per_organization() -> str:
    """Rate-limit key: the caller's organization (all its users share the budget)."""
    actor = g.get("actor")
    if actor is not None and actor.org_id is not None:
        return f"org:{actor.org_id}"
    return get_remote_address()


def _lookup_limit() -> str:
    return current_app.config.get("MARKET_LOOKUP_RATE_LIMIT", DEFAULT_LOOKUP_RATE_LIMIT)


#: Shared by the API and the web page, so a bank cannot double its rate through the browser.
lookup_rate_limit = limiter.shared_limit(
    _lookup_limit, scope="consent-lookups", key_func=_per_organization, methods=["POST"]
)


def run_lookup(actor, license_id: int, subject_credit_code: str) -> lookups.LookupResult:
    """The lookup with the app's pseudonym key, storage and ``MARKET_LOOKUP_ROW_LIMIT`` (rows
    per table); also used by the web page."""
    return lookups.perform_lookup(
        db.session,
        actor,
        license_id=license_id,
        subject_credit_code=subject_credit_code,
        key=pseudonym_key(),
        local_path=storage().local_path,
        row_limit=int(current_app.config.get("MARKET_LOOKUP_ROW_LIMIT", DEFAULT_ROW_LIMIT)),
    )


@blp.route("/consents")
class Consents(MethodView):
    @blp.arguments(ConsentListArgs, location="query")
    @blp.response(200, page_of(ConsentSchema))
    def get(self, args):
        """List consents.

        A bank sees its own, an enterprise those about itself, the operator and the regulator
        all. Filter ``status`` (``expired`` = granted but past ``valid_until``).
        """
        stmt = services.list_consents(db.session, current_actor(), status=args.get("status"))
        return paginate(db.session, stmt, args["page"], args["per_page"])

    @blp.arguments(ConsentCreateSchema)
    @blp.response(201, ConsentSchema)
    @blp.alt_response(403, description="Not an admitted buyer, blacklisted, or license not active.")
    @blp.alt_response(404, description="No such license (or another buyer's).")
    @blp.alt_response(409, description="An open request or valid consent already exists.")
    def post(self, body):
        """Ask an enterprise for consent to look up its records under a license (buyer)."""
        return services.request_consent(db.session, current_actor(), **body)


@blp.route("/consents/<int:consent_id>")
class ConsentItem(MethodView):
    @blp.response(200, ConsentSchema)
    def get(self, consent_id):
        """One consent (its bank, the enterprise it names, the operator, the regulator)."""
        return services.get_consent(db.session, current_actor(), consent_id)


@blp.route("/consents/<int:consent_id>/decision")
class ConsentDecision(MethodView):
    @blp.arguments(ConsentDecisionSchema)
    @blp.response(200, ConsentSchema)
    @blp.alt_response(403, description="Awaiting admission, or not the enterprise named.")
    @blp.alt_response(409, description="Not requested any more.")
    def post(self, body, consent_id):
        """Grant or deny a requested consent (the enterprise whose credit code it names)."""
        return services.decide_consent(db.session, current_actor(), consent_id, **body)


@blp.route("/consents/<int:consent_id>/record")
class ConsentRecord(MethodView):
    @blp.arguments(ConsentRecordSchema)
    @blp.response(200, ConsentSchema)
    @blp.alt_response(409, description="Not requested any more.")
    def post(self, body, consent_id):
        """Record the enterprise's paper authorization letter (授权书): granted (operator)."""
        return services.record_paper_authorization(db.session, current_actor(), consent_id, **body)


@blp.route("/consents/<int:consent_id>/revoke")
class ConsentRevoke(MethodView):
    @blp.response(200, ConsentSchema)
    @blp.alt_response(409, description="Not granted.")
    def post(self, consent_id):
        """Revoke a granted consent; lookups stop at once (the enterprise)."""
        return services.revoke_consent(db.session, current_actor(), consent_id)


@blp.route("/lookups")
class Lookups(MethodView):
    decorators = [lookup_rate_limit]

    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_of(LookupLogSchema))
    def get(self, args):
        """The lookup log: a bank its own lookups, the operator and the regulator all."""
        stmt = lookups.list_lookups(db.session, current_actor())
        return paginate(db.session, stmt, args["page"], args["per_page"])

    @blp.arguments(LookupCreateSchema)
    @blp.response(200, LookupResultSchema)
    @blp.alt_response(
        403,
        description="No granted, unexpired consent (or an unknown enterprise), license not "
        "active, or blacklisted.",
    )
    @blp.alt_response(404, description="No such license (or another buyer's).")
    @blp.alt_response(429, description="Quota used up, or too many lookups per minute.")
    def post(self, body):
        """Look up one consenting enterprise's records (buyer).

        Reads the enterprise's rows from every licensed table: licensed columns only, personal
        identifiers desensitized, at most ``row_limit`` rows per table. Needs a granted,
        unexpired consent; uses one unit of the license's quota.
        """
        return run_lookup(current_actor(), body["license_id"], body["subject_credit_code"])


@blp.route("/subjects/me/access-log")
class AccessLog(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_of(AccessEntrySchema))
    def get(self, args):
        """The calling enterprise's access log (data subject).

        Every consent event and lookup about the enterprise: which bank, when, which tables.
        """
        return lookups.access_log(
            db.session, current_actor(), page=args["page"], per_page=args["per_page"]
        )
