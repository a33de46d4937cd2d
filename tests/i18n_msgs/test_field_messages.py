"""marshmallow's own messages and the 422 envelope reach a zh caller in Chinese (#15)."""

from __future__ import annotations

import pytest

from market.field_messages import MESSAGES, translate_errors
from tests.zh_text import CJK, assert_chinese, check_answer, english_sentences


@pytest.mark.parametrize(
    "english, chinese",
    [
        ("Missing data for required field.", "缺少必填字段。"),
        ("Not a valid integer.", "不是有效的整数。"),
        ("Unknown field.", "未知字段。"),
        ("Must be greater than or equal to 1.", "必须大于或等于 1。"),
        ("Length must be between 1 and 200.", "长度必须在 1 到 200 之间。"),
        ("Must be one of: a, b.", "必须是以下之一：a, b。"),
    ],
)
def test_marshmallow_defaults_are_translated(app, english, chinese):
    from flask_babel import force_locale

    with app.test_request_context("/"), force_locale("zh"):
        assert translate_errors({"f": [english]}) == {"f": [chinese]}
    with app.test_request_context("/"), force_locale("en"):
        assert translate_errors({"f": [english]}) == {"f": [english]}


def test_structure_and_foreign_messages_are_kept(app):
    """Nested schemas, list indexes and messages that are not marshmallow's pass through."""
    from flask_babel import force_locale

    tree = {"items": {0: {"dataset_id": ["Not a valid integer."]}}, "x": ["已经是中文。"]}
    with app.test_request_context("/"), force_locale("zh"):
        assert translate_errors(tree) == {
            "items": {0: {"dataset_id": ["不是有效的整数。"]}},
            "x": ["已经是中文。"],
        }


def test_every_default_has_chinese(app):
    from flask_babel import force_locale

    with app.test_request_context("/"), force_locale("zh"):
        for msgid in MESSAGES:
            values = {"min": 1, "max": 2, "choices": "a", "other": 1, "equal": 3,
                      "input": "x", "values": "a"}
            from market.i18n import translate

            text = translate(msgid, values if "%(" in msgid else None)
            assert CJK.search(text) and not english_sentences(text), (msgid, text)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_schema_errors_over_the_api(client, as_role, make_dataset, quote_body, lang):
    """A missing field, a wrong type and an unknown field, each in the caller's language."""
    _, h = as_role("buyer")
    d = make_dataset()
    body = {**quote_body(d), "query_quota": "many", "foo": 1}
    del body["purpose"]
    r = client.post("/api/v1/quotes", json=body, headers={**h, "Accept-Language": lang})
    got = check_answer(r, 422, lang, "schema errors")
    errors = got["errors"]
    assert set(errors) >= {"purpose", "query_quota", "foo"}, errors
    if lang == "zh":
        assert errors["purpose"] == ["缺少必填字段。"]
        assert errors["query_quota"] == ["不是有效的整数。"]
        assert errors["foo"] == ["未知字段。"]
        assert_chinese(got["message"])
    else:
        assert errors["purpose"] == ["Missing data for required field."]
        assert got["message"] == "The request is not valid; see errors for each field."


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_werkzeug_defaults_are_translated(client, lang):
    r = client.get("/api/v1/no-such-thing", headers={"Accept-Language": lang})
    check_answer(r, 404, lang, "unknown API path")
