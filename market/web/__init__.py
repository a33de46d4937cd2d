"""Server-rendered pages (Jinja). Views call the same services as the API and the CLI."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import Flask, g, request

SHANGHAI = ZoneInfo("Asia/Shanghai")


def fen(amount: int | None) -> str:
    """Money for people: integer fen shown as ¥ with two decimals."""
    if amount is None:
        return "—"
    sign = "-" if amount < 0 else ""
    yuan, cents = divmod(abs(int(amount)), 100)
    return f"{sign}¥{yuan:,}.{cents:02d}"


def local_time(value: dt.datetime | str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """UTC in storage, Asia/Shanghai on screen (an ISO 8601 string, as API dicts carry, too)."""
    if value is None:
        return "—"
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(SHANGHAI).strftime(fmt)


def _remember_language(response):
    lang = request.args.get("lang")
    if lang in ("zh", "en"):
        response.set_cookie("lang", lang, max_age=365 * 24 * 3600, samesite="Lax", httponly=True)
    return response


def init_web(app: Flask) -> None:
    app.jinja_env.filters["fen"] = fen
    app.jinja_env.filters["local_time"] = local_time
    from market.web.labels import label_filter

    app.jinja_env.filters["label"] = label_filter
    app.after_request(_remember_language)

    @app.context_processor
    def _inject():
        from flask_babel import get_locale

        from market.web.registry import links_for, menus_for

        user = g.get("user")
        role = user.organization.kind if user else None
        return {
            "current_user": user,
            "current_locale": str(get_locale() or "zh"),
            "nav_links": links_for(role),
            "nav_items": menus_for(role),
        }
