"""Marshmallow validators whose messages are in the reader's language (#15).

Drop-in replacements for ``marshmallow.validate.Length``, ``Range``, ``OneOf`` and ``Regexp``:
the message is chosen and translated when validation fails (inside the request, so in the
request's locale), not when the schema class is built at import time.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from market.i18n import N_, translate


class Length(ma.validate.Length):
    def _format_error(self, value: Any, message: str) -> str:
        if self.error:
            return super()._format_error(value, message)
        if self.equal is not None:
            return translate(N_("Length must be %(equal)s."), {"equal": self.equal})
        if self.min is not None and self.max is not None:
            return translate(
                N_("Length must be between %(min)s and %(max)s."),
                {"min": self.min, "max": self.max},
            )
        if self.min is not None:
            return translate(N_("Length must be at least %(min)s."), {"min": self.min})
        return translate(N_("Length must be at most %(max)s."), {"max": self.max})


class Range(ma.validate.Range):
    def _format_error(self, value: Any, message: str) -> str:
        if self.error:
            return super()._format_error(value, message)
        if self.min is not None and self.max is not None:
            return translate(
                N_("Must be between %(min)s and %(max)s."), {"min": self.min, "max": self.max}
            )
        if self.min is not None:
            return translate(N_("Must be at least %(min)s."), {"min": self.min})
        return translate(N_("Must be at most %(max)s."), {"max": self.max})


class OneOf(ma.validate.OneOf):
    def _format_error(self, value: Any) -> str:
        if self.error != self.default_message:
            return super()._format_error(value)
        return translate(N_("Must be one of: %(choices)s."), {"choices": self.choices_text})


class Regexp(ma.validate.Regexp):
    def _format_error(self, value: Any) -> str:
        if self.error != self.default_message:
            return super()._format_error(value)
        return translate(N_("Not in the expected format."))
