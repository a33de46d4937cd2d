"""An external (pure-package) error with values that reaches the generic error handler is
answered in the caller's language: the handler translates its msgid with the values apart,
not its already formatted English text (which is no msgid)."""

from __future__ import annotations

import pytest

from market.i18n import N_
from market.pipeline.errors import MalformedFile

MSGID = N_("row %(number)s has values beyond the %(columns)s header columns")


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("zh", "第 7 行在表头的 3 列之外还有值"),
        ("en", "row 7 has values beyond the 3 header columns"),
    ],
)
def test_a_pipeline_error_with_values_is_translated(app, lang, expected):
    exc = MalformedFile(MSGID, row=7, number=7, columns=3)
    with app.test_request_context("/api/v1/me", headers={"Accept-Language": lang}):
        response = app.make_response(app.handle_user_exception(exc))
    assert response.status_code == 422
    assert response.get_json()["message"] == expected
