from __future__ import annotations

import json

from flask.views import MethodView
from flask_babel import gettext as _
from flask_smorest import Blueprint

from market.accounts import permissions as perm
from market.api_base import page_of, paginate
from market.audit import services
from market.audit.models import AuditEvent
from market.audit.schemas import (
    EventFilterSchema,
    EventInChainSchema,
    EventSchema,
    HeadSchema,
    VerifySchema,
)
from market.auth import current_actor
from market.csvutil import csv_response
from market.errors import NotFound
from market.extensions import db
from market.keys import public_keys

blp = Blueprint("audit_api", __name__, url_prefix="/api/v1/audit", description="The audit chain")


def _filtered(args) -> object:
    return services.event_filters(
        type_=args.get("type"),
        actor_org=args.get("actor_org"),
        since=args.get("since"),
        until=args.get("until"),
    )


@blp.route("/events")
class Events(MethodView):
    @blp.arguments(EventFilterSchema, location="query")
    @blp.response(200, page_of(EventSchema))
    def get(self, args):
        """Audit events, newest first, filtered by type prefix, actor organization and time."""
        perm.require(perm.can_read_audit(current_actor()), "Only the operator and the regulator read the audit log.")
        stmt = _filtered(args).order_by(AuditEvent.seq.desc())
        page = paginate(db.session, stmt, args["page"], args["per_page"])
        page["items"] = [services.event_dict(e) for e in page["items"]]
        return page


@blp.route("/verify")
class Verify(MethodView):
    @blp.response(200, VerifySchema)
    def get(self):
        """Recompute the whole chain and check the signed checkpoints."""
        perm.require(perm.can_read_audit(current_actor()), "Only the operator and the regulator verify the chain.")
        return services.verify_chain(db.session, public_keys()).to_dict()


@blp.route("/head")
class Head(MethodView):
    @blp.response(200, HeadSchema)
    def get(self):
        """The chain's latest signed head ``{seq, hash, signed_at, signature, public_key_id}``.

        The head is signed now if events were appended since the last checkpoint. Keep it:
        ``market audit verify --expect-head SEQ:HASH`` fails once the chain no longer reaches
        it. A regulator's read is recorded, so every later verification checks it too.
        """
        actor = current_actor()
        perm.require(perm.can_read_audit(actor), _("Only the operator and the regulator read the audit head."))
        head = services.signed_head(db.session)
        if head is None:
            raise NotFound(_("The audit chain is empty."))
        if actor.role == "regulator":
            services.observe_head(db.session, actor, head, "api")
        return head.to_dict()


@blp.route("/export.csv")
class Export(MethodView):
    @blp.arguments(EventFilterSchema, location="query")
    @blp.response(200, content_type="text/csv")
    def get(self, args):
        """The (filtered) audit log as CSV, oldest first (operator, regulator). Each export is
        itself audited (``audit.exported``, with its filters)."""
        actor = current_actor()
        perm.require(
            perm.can_export_audit(actor), _("Only the operator and the regulator export the audit log.")
        )
        # Recorded in the request's transaction, committed when the view returns; the stream
        # reads through a session of its own (market.csvutil).
        services.record(
            db.session, "audit.exported", actor, None,
            {"filters": {k: (v.isoformat() if hasattr(v, "isoformat") else v)
                         for k, v in sorted(args.items())
                         if k in ("type", "actor_org", "since", "until") and v is not None}},
        )
        stmt = _filtered(args).order_by(AuditEvent.seq).execution_options(yield_per=1000)
        header = ["seq", "at", "type", "actor", "subject_type", "subject_id", "data", "prev_hash", "hash"]

        def rows(session):
            for e in session.scalars(stmt):
                d = services.event_dict(e)
                yield [
                    d["seq"], d["at"], d["type"], json.dumps(d["actor"], ensure_ascii=False, sort_keys=True),
                    e.subject_type or "", e.subject_id or "",
                    json.dumps(d["data"], ensure_ascii=False, sort_keys=True), d["prev_hash"], d["hash"],
                ]

        return csv_response(header, rows, "audit-events.csv")


@blp.route("/events/<int:seq>")
class EventItem(MethodView):
    @blp.response(200, EventInChainSchema)
    def get(self, seq):
        """One event with its place in the chain: previous and next event, whether its link and
        hash hold, and the signed checkpoint that covers it (operator, regulator)."""
        from market.audit.chain import position

        perm.require(perm.can_read_audit(current_actor()), _("Only the operator and the regulator read the audit log."))
        event = db.session.get(AuditEvent, seq)
        if event is None:
            raise NotFound(_("The audit chain has no event %(seq)s.", seq=seq))
        return {"event": services.event_dict(event), "chain": position(db.session, event, public_keys()).to_dict()}
