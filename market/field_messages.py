"""marshmallow's own field messages in the caller's language (#15).

marshmallow and its validators write English text ("Missing data for required field.",
"Must be greater than or equal to 1."). The error handler passes every field message through
:func:`translate_errors`: a message that is one of marshmallow's defaults (with its values, such
as ``1``, taken back out of the text) is looked up in the catalogue; anything else (our own
schemas' messages, already translated) passes through unchanged.

No Flask here: the patterns are plain data, and :func:`market.i18n.translate` does the lookup.
"""

from __future__ import annotations

import re
from typing import Any

from market.i18n import N_, translate

#: marshmallow 4's default messages, written with ``%(name)s`` where marshmallow fills in
#: ``{name}``. The English msgid equals marshmallow's text, so English answers do not change.
MESSAGES: tuple[str, ...] = (
    N_("Missing data for required field."),
    N_("Field may not be null."),
    N_("Invalid value."),
    N_("Invalid input."),
    N_("Invalid type."),
    N_("Invalid input type."),
    N_("Unknown field."),
    N_("Not a valid boolean."),
    N_("Not a valid integer."),
    N_("Not a valid number."),
    N_("Number too large."),
    N_("Special numeric values (nan or infinity) are not permitted."),
    N_("Not a valid string."),
    N_("Not a valid utf-8 string."),
    N_("Not a valid date."),
    N_("Not a valid datetime."),
    N_("Not a valid time."),
    N_("Not a valid naive datetime."),
    N_("Not a valid aware datetime."),
    N_("Not a valid naive time."),
    N_("Not a valid aware time."),
    N_("Not a valid period of time."),
    N_("Not a valid mapping type."),
    N_("Not a valid list."),
    N_("Not a valid tuple."),
    N_("Not a valid email address."),
    N_("Not a valid URL."),
    N_("Not a valid UUID."),
    N_("Not a valid IP address."),
    N_("String does not match expected pattern."),
    N_("Must be one of: %(choices)s."),
    N_("Must be equal to %(other)s."),
    N_("Shorter than minimum length %(min)s."),
    N_("Longer than maximum length %(max)s."),
    N_("Length must be between %(min)s and %(max)s."),
    N_("Length must be %(equal)s."),
    N_("Must be greater than or equal to %(min)s."),
    N_("Must be greater than %(min)s."),
    N_("Must be less than or equal to %(max)s."),
    N_("Must be less than %(max)s."),
    N_("Must be greater than or equal to %(min)s and less than or equal to %(max)s."),
    N_("Must be greater than %(min)s and less than %(max)s."),
    N_("Must be greater than or equal to %(min)s and less than %(max)s."),
    N_("Must be greater than %(min)s and less than or equal to %(max)s."),
    N_('"%(input)s" cannot be formatted as a date.'),
    N_('"%(input)s" cannot be formatted as a datetime.'),
    N_("One or more of the choices you made was not in: %(choices)s."),
    N_("One or more of the choices you made was in: %(values)s."),
)

#: The generic message of a request whose fields did not validate (the 422 envelope).
SCHEMA_ENVELOPE = N_("The request is not valid; see errors for each field.")

_PARAM = re.compile(r"%\((\w+)\)s")


def _pattern(msgid: str) -> re.Pattern[str]:
    parts, last = [], 0
    for m in _PARAM.finditer(msgid):
        parts.append(re.escape(msgid[last : m.start()]))
        parts.append(f"(?P<{m.group(1)}>.+?)")
        last = m.end()
    parts.append(re.escape(msgid[last:]))
    return re.compile("".join(parts), re.DOTALL)


_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple((_pattern(m), m) for m in MESSAGES)


def translate_message(text: Any) -> Any:
    """``text`` in the current locale if it is one of marshmallow's messages, else unchanged."""
    if not isinstance(text, str):
        return text
    for pattern, msgid in _PATTERNS:
        m = pattern.fullmatch(text)
        if m is not None:
            return translate(msgid, m.groupdict())
    return text


def translate_errors(errors: Any) -> Any:
    """A webargs/marshmallow error tree (dicts of field names, lists, nested schemas, list
    indexes) with each message translated; keys, codes and structure unchanged."""
    if isinstance(errors, dict):
        return {key: translate_errors(value) for key, value in errors.items()}
    if isinstance(errors, list | tuple):
        return [translate_errors(value) for value in errors]
    return translate_message(errors)
