"""The audit explorer: filter events, verify the chain with one click, export CSV."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Blueprint, abort, g, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from market.accounts import permissions as perm
from market.accounts.models import Organization
from market.api_base import paginate
from market.audit import services
from market.audit.models import AuditEvent
from market.auth import login_required
from market.errors import Forbidden, NotFound
from market.extensions import db
from market.keys import public_keys
from market.web import registry

bp = Blueprint("audit", __name__)
SHANGHAI = ZoneInfo("Asia/Shanghai")

registry.nav_link("audit.explorer", _l("Audit log"), roles={"regulator", "operator"}, order=70)
registry.nav_link("audit.insights_page", _l("Charts"), roles={"regulator", "operator"}, order=71)


@registry.panel("audit", roles={"regulator", "operator"}, title=_l("Audit log"), order=10)
def _audit_panel(user):
    head = db.session.execute(sa.select(AuditEvent.seq, AuditEvent.hash, AuditEvent.at).order_by(AuditEvent.seq.desc()).limit(1)).first()
    return {"head": head}


def _local_date(value: str | None, end: bool = False) -> dt.datetime | None:
    """A date typed in Shanghai time → the UTC instant at its start (or the next day's)."""
    if not value:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        return None
    if end:
        day += dt.timedelta(days=1)
    return dt.datetime(day.year, day.month, day.day, tzinfo=SHANGHAI).astimezone(dt.UTC)


@bp.route("/audit", methods=["GET", "POST"])
@login_required
def explorer():
    if not perm.can_read_audit(g.actor):
        raise Forbidden(_("Only the operator and the regulator read the audit log."))
    args = request.args
    try:
        actor_org = int(args["actor_org"]) if args.get("actor_org") else None
    except ValueError:
        actor_org = None
    filters = {
        "type_": (args.get("type") or "").strip() or None,
        "actor_org": actor_org,
        "since": _local_date(args.get("since")),
        "until": _local_date(args.get("until"), end=True),
    }
    try:
        page_no = max(1, int(args.get("page", 1)))
    except ValueError:
        page_no = 1
    stmt = services.event_filters(**filters).order_by(AuditEvent.seq.desc())
    page = paginate(db.session, stmt, page_no, 50)
    verification = None
    if request.method == "POST":
        from flask_wtf.csrf import validate_csrf
        from wtforms import ValidationError

        try:
            validate_csrf(request.form.get("csrf_token"))
        except ValidationError:
            abort(400)
        verification = services.verify_chain(db.session, public_keys())
        services.record(
            db.session, "audit.verified", g.actor, None,
            {"valid": verification.valid, "events": verification.events, "head": verification.head},
        )
    # The signed head this visit saw: a regulator's visit records it, so that a later
    # truncation below it fails every verification and shows here as a lost head.
    head = services.signed_head(db.session)
    if head is not None and g.actor.role == "regulator":
        services.observe_head(db.session, g.actor, head, "console")
    lost = services.lost_heads(db.session)
    orgs = db.session.scalars(sa.select(Organization).order_by(Organization.kind, Organization.name)).all()
    org_names = {o.id: o.name for o in orgs}
    from market.audit.describe import describe_all, type_choices

    filter_args = {k: v for k, v in args.items() if k in ("type", "actor_org", "since", "until") and v}
    # The export API reads instants (UTC), not Shanghai dates: pass what the page filtered on.
    export_args = {k: v for k, v in filter_args.items() if k in ("type", "actor_org")}
    if filters["since"] is not None:
        export_args["since"] = filters["since"].isoformat()
    if filters["until"] is not None:
        export_args["until"] = filters["until"].isoformat()
    return render_template(
        "audit/explorer.html",
        page=page,
        orgs=orgs,
        org_names=org_names,
        type_groups=type_choices(db.session),
        described=describe_all(db.session, page["items"]),
        args=args,
        filter_args=filter_args,
        verification=verification,
        head=head,
        lost_heads=lost,
        can_export=perm.can_export_audit(g.actor),
        export_args=export_args,
        since_utc=filters["since"],
        until_utc=filters["until"],
    )


@bp.get("/insights")
@login_required
def insights_page():
    """Charts for the regulator: transactions over time, revenue per department, queries and
    refusals per license, top refusal rules."""
    if not perm.can_read_audit(g.actor):
        raise Forbidden(_("Only the operator and the regulator read the audit log."))
    from market.audit.insights import dashboard

    data = dashboard(db.session)
    return render_template("audit/insights.html", data=data)


@bp.get("/audit/events/<int:seq>")
@login_required
def event_detail(seq: int):
    """One event in words, its place in the chain and the signed checkpoint that covers it."""
    if not perm.can_read_audit(g.actor):
        raise Forbidden(_("Only the operator and the regulator read the audit log."))
    from market.audit.chain import position
    from market.audit.describe import describe_all

    event = db.session.get(AuditEvent, seq)
    if event is None:
        raise NotFound(_("The audit chain has no event %(seq)s.", seq=seq))
    return render_template(
        "audit/event.html",
        event=event,
        described=describe_all(db.session, [event])[0],
        chain=position(db.session, event, public_keys()),
    )
