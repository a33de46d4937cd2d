"""Web pages of the data sandbox: the buyer's list of usable licenses and the SQL console.

UI strings live in the templates (the catalogue extraction scans ``market/`` only). The console
only renders the page (the schema, balances and history); queries, their cost and
the history refresh go through the JSON API from ``static/js/sandbox.js`` (session cookie plus
the X-CSRFToken header).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from flask import Blueprint, current_app, g, render_template, url_for
from flask_babel import lazy_gettext as _l

from licenses.models import License
from licenses.states import LicenseStatus
from market.auth import login_required
from market.db import utcnow
from market.extensions import db
from market.web import registry

from . import permissions as perm
from . import services
from .models import SandboxQuery
from .workspace import SandboxSettings

bp = Blueprint("sandbox", __name__)

registry.nav_link("sandbox.index", _l("Sandbox"), roles={"buyer"}, order=50)


@bp.app_template_global("sandbox_privacy_left")
def _privacy_left(lic: License):
    """The organization's remaining epsilon over the license's DP datasets (or None)."""
    return services.organization_budget_remaining(db.session, lic)


@registry.panel(
    "privacy_spending", roles={"regulator", "operator"}, title=_l("Privacy budget spent"), order=40
)
def _privacy_spending_panel(user):
    items = [i for i in services.privacy_spending(db.session, g.actor, None) if i["buyers"]]
    return {"datasets": items}


@registry.panel("sandbox", roles={"buyer"}, title=_l("Sandbox"), order=25)
def _sandbox_panel(user):
    org_id = user.organization_id
    active = db.session.scalars(
        sa.select(License)
        .where(License.buyer_org_id == org_id, License.status == LicenseStatus.ACTIVE.value)
        .order_by(License.created_at.desc(), License.id.desc())
        .limit(5)
    ).all()
    since = utcnow() - dt.timedelta(days=30)
    counts = dict(
        db.session.execute(
            sa.select(SandboxQuery.status, sa.func.count())
            .where(SandboxQuery.buyer_org_id == org_id, SandboxQuery.created_at >= since)
            .group_by(SandboxQuery.status)
        ).all()
    )
    return {"licenses": active, "ok": counts.get("ok", 0), "total": sum(counts.values())}


@bp.get("/sandbox")
@login_required
def index():
    if not perm.can_run_queries(g.actor):
        return render_template("sandbox/forbidden.html", reason="not_buyer"), 403
    usable = services.usable_licenses(db.session, g.actor)
    return render_template("sandbox/index.html", licenses=usable)


@bp.get("/sandbox/<int:license_id>")
@login_required
def console(license_id: int):
    settings = SandboxSettings.from_config(current_app.config)
    lic, workspace = services.workspace_of(db.session, g.actor, license_id, settings)
    if not perm.can_open_console(g.actor, lic.buyer_org_id):
        return render_template("sandbox/forbidden.html", reason="not_owner", lic=lic), 403
    api = {
        "tables": url_for("sandbox_api.Tables", license_id=lic.id),
        "queries": url_for("sandbox_api.Queries", license_id=lic.id),
        "cost": url_for("sandbox_api.Cost", license_id=lic.id),
    }
    example = None
    if workspace.tables:
        table = workspace.tables[0]
        dims = [c.name for c in table.columns if c.kind == "dimension"]
        if dims:
            example = f"SELECT {dims[0]}, COUNT(*) AS n\nFROM {table.slug}\nGROUP BY {dims[0]}"
        else:
            example = f"SELECT COUNT(*) AS n FROM {table.slug}"
    budgets = services.budgets_of(
        db.session, lic.buyer_org_id, [t for t in workspace.tables if t.privacy is not None]
    )
    return render_template(
        "sandbox/console.html",
        budgets=budgets,
        lic=lic,
        workspace=workspace,
        usable=lic.status == LicenseStatus.ACTIVE.value,
        api=api,
        example=example,
        timeout_s=settings.timeout_s,
    )
