"""Reading notifications: the recipient's list, unread count, marking read; and their text."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from flask import url_for
from sqlalchemy.orm import Session
from werkzeug.routing import BuildError

from market.accounts.actor import Actor
from market.db import utcnow
from market.errors import Forbidden, NotFound
from market.i18n import translate
from market.notifications.models import Notification
from market.notifications.rules import MESSAGES, MONEY_PARAMS


def _require_user(actor: Actor) -> int:
    if actor.user_id is None:
        from flask_babel import gettext as _

        raise Forbidden(_("Notifications belong to a signed-in user."))
    return actor.user_id


def list_stmt(actor: Actor, *, unread_only: bool = False) -> sa.Select:
    """The caller's own notifications, newest first. Raises Forbidden without a user."""
    stmt = sa.select(Notification).where(Notification.recipient_user_id == _require_user(actor))
    if unread_only:
        stmt = stmt.where(Notification.read_at.is_(None))
    return stmt.order_by(Notification.id.desc())


def unread_count(session: Session, user_id: int) -> int:
    return session.scalar(
        sa.select(sa.func.count())
        .select_from(Notification)
        .where(Notification.recipient_user_id == user_id, Notification.read_at.is_(None))
    ) or 0


def mark_read(
    session: Session, actor: Actor, notification_id: int, *, now: dt.datetime | None = None
) -> Notification:
    """Mark one of the caller's notifications read (idempotent).

    Raises NotFound when it does not exist or belongs to someone else (who may not learn
    that it exists), Forbidden without a user. Reading is not audited: it changes nothing
    anyone else sees.
    """
    user_id = _require_user(actor)
    row = session.get(Notification, notification_id)
    if row is None or row.recipient_user_id != user_id:
        from flask_babel import gettext as _

        raise NotFound(_("Notification %(id)s was not found.", id=notification_id))
    if row.read_at is None:
        row.read_at = now or utcnow()
        session.flush()
    return row


def mark_all_read(session: Session, actor: Actor, *, now: dt.datetime | None = None) -> int:
    """Mark every unread notification of the caller read; returns how many."""
    user_id = _require_user(actor)
    result = session.execute(
        sa.update(Notification)
        .where(Notification.recipient_user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=now or utcnow())
    )
    session.flush()
    return result.rowcount or 0


def _display_params(params: dict[str, Any]) -> dict[str, Any]:
    from market.web import fen

    out = dict(params)
    for key in MONEY_PARAMS & out.keys():
        if isinstance(out[key], int):
            out[key] = fen(out[key])
    return out


def text(row: Notification) -> str:
    """The notification's sentence in the current locale."""
    message = MESSAGES.get(row.type)
    if message is None:
        return row.type
    try:
        return translate(message.text, _display_params(row.params or {}))
    except (KeyError, TypeError, ValueError):
        # Params written by an older version of a message: show the code rather than fail.
        return row.type


def link(row: Notification) -> str | None:
    """The path of the page the notification is about, or None."""
    message = MESSAGES.get(row.type)
    if message is None or message.link is None:
        return None
    endpoint, args = message.link
    params = row.params or {}
    try:
        return url_for(endpoint, **{arg: params[name] for arg, name in args.items()})
    except (KeyError, BuildError):  # params of an older message, or a page not registered
        return None
