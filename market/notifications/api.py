"""The notifications API: the caller's own notifications and marking them read."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from market.api_base import paginate
from market.auth import current_actor
from market.extensions import db
from market.notifications import services
from market.notifications.schemas import (
    NotificationListArgs,
    NotificationPageSchema,
    NotificationSchema,
)

blp = Blueprint(
    "notifications_api",
    __name__,
    url_prefix="/api/v1",
    description="Notifications: the state changes that concern the caller",
)


@blp.route("/notifications")
class Notifications(MethodView):
    @blp.arguments(NotificationListArgs, location="query")
    @blp.response(200, NotificationPageSchema)
    def get(self, args):
        """List the caller's notifications, newest first, with the unread count."""
        actor = current_actor()
        stmt = services.list_stmt(actor, unread_only=args["unread"])
        page = paginate(db.session, stmt, args["page"], args["per_page"])
        page["unread"] = services.unread_count(db.session, actor.user_id)
        return page


@blp.route("/notifications/<int:notification_id>/read")
class NotificationRead(MethodView):
    @blp.response(200, NotificationSchema)
    def post(self, notification_id: int):
        """Mark one of the caller's notifications read (404 for anyone else's)."""
        row = services.mark_read(db.session, current_actor(), notification_id)
        return row


@blp.route("/notifications/read-all")
class NotificationsReadAll(MethodView):
    @blp.response(200, NotificationPageSchema)
    def post(self):
        """Mark all the caller's notifications read; answers the first page."""
        actor = current_actor()
        services.mark_all_read(db.session, actor)
        page = paginate(db.session, services.list_stmt(actor), 1, 20)
        page["unread"] = 0
        return page
