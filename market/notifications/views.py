"""The notification centre page, the header's bell, and marking read (POST, CSRF)."""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm

from market.api_base import paginate
from market.auth import login_required
from market.extensions import db
from market.notifications import services

bp = Blueprint("notifications", __name__)

PAGE_SIZE = 30


class MarkReadForm(FlaskForm):
    """CSRF only: marking read is a state change, so it is a POST."""


@bp.app_context_processor
def _bell():
    """The header's unread count, computed only when a page renders the bell."""

    def unread_notifications() -> int:
        user = g.get("user")
        return services.unread_count(db.session, user.id) if user is not None else 0

    return {"unread_notifications": unread_notifications}


@bp.get("/notifications")
@login_required
def index():
    unread_only = request.args.get("unread") == "1"
    page_no = max(request.args.get("page", 1, type=int) or 1, 1)
    page = paginate(
        db.session, services.list_stmt(g.actor, unread_only=unread_only), page_no, PAGE_SIZE
    )
    rows = [
        {"row": row, "text": services.text(row), "link": services.link(row)}
        for row in page["items"]
    ]
    return render_template(
        "notifications/index.html",
        page=page,
        rows=rows,
        unread_only=unread_only,
        unread=services.unread_count(db.session, g.user.id),
        form=MarkReadForm(),
    )


@bp.post("/notifications/<int:notification_id>/read")
@login_required
def mark_read(notification_id: int):
    if not MarkReadForm().validate_on_submit():
        flash(_("The form expired; please try again."), "error")
        return redirect(url_for("notifications.index"))
    row = services.mark_read(db.session, g.actor, notification_id)
    # "Open": read it and go to the page it is about (a path the server built, not input).
    target = services.link(row) if request.form.get("open") else None
    return redirect(target or url_for("notifications.index"))


@bp.post("/notifications/read-all")
@login_required
def mark_all_read():
    if not MarkReadForm().validate_on_submit():
        flash(_("The form expired; please try again."), "error")
        return redirect(url_for("notifications.index"))
    count = services.mark_all_read(db.session, g.actor)
    flash(_("%(count)s notifications marked read.", count=count), "success")
    return redirect(url_for("notifications.index"))
