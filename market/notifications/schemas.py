"""Dump and load schemas of the notifications API."""

from __future__ import annotations

import marshmallow as ma

from market.api_base import PageArgs


class NotificationListArgs(PageArgs):
    unread = ma.fields.Boolean(load_default=False, metadata={"description": "Only unread ones."})


class NotificationSchema(ma.Schema):
    id = ma.fields.Integer()
    type = ma.fields.String(metadata={"description": "A stable code, e.g. license.invoiced"})
    params = ma.fields.Dict(metadata={"description": "Ids and names the message refers to"})
    message = ma.fields.Method("_message", metadata={"description": "In the caller's language"})
    link = ma.fields.Method("_link", metadata={"description": "The page it is about, or null"})
    created_at = ma.fields.DateTime()
    read_at = ma.fields.DateTime(allow_none=True)

    def _message(self, row) -> str:
        from market.notifications.services import text

        return text(row)

    def _link(self, row) -> str | None:
        from market.notifications.services import link

        return link(row)


class NotificationPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(NotificationSchema), required=True)
    total = ma.fields.Integer(required=True)
    page = ma.fields.Integer(required=True)
    per_page = ma.fields.Integer(required=True)
    unread = ma.fields.Integer(required=True, metadata={"description": "Unread in total"})
