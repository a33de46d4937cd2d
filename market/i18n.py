"""Messages people read, in their language.

Two kinds of code write messages:

- The app (views, services, the error handlers) calls Flask-Babel directly:
  ``from flask_babel import gettext as _`` and ``_("License %(id)s is suspended.", id=7)``,
  or ``lazy_gettext as _l`` at module level. The request's locale decides the language.
- The pure packages (``pricing``, ``sandbox.policy``, the domain code of ``licenses``,
  ``market.pipeline``) must not import Flask. They mark their English message with
  :func:`N_` (so that extraction finds it) and keep its ``%(name)s`` values apart, for
  example ``PolicyViolation(rule, N_("column %(name)s is not licensed"), name=col)``.
  Where such an error reaches a person, the app calls :func:`translate`.

Codes (``errors.rule``, event types, statuses) are never translated: clients key on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def N_(message: str) -> str:  # noqa: N802 - the gettext convention
    """Mark ``message`` for extraction; it is translated later, where it is shown."""
    return message


def translate(message: Any, params: Mapping[str, Any] | None = None) -> str:
    """``message`` (an English msgid, marked with ``N_``) in the current locale, with its
    ``%(name)s`` values filled in. Lazy strings and already translated text pass through.

    Outside an app context the English text is returned, formatted.
    """
    text = str(message)
    values = dict(params or {})
    try:
        from flask import has_app_context

        if has_app_context():
            from flask_babel import gettext

            return gettext(text, **values) if values else gettext(text)
    except ImportError:  # pragma: no cover - Flask is a dependency of the app
        pass
    return text % values if values else text
