"""Error messages that were English-only literals (datasets, accounts, the JSON guard) answer a
zh caller in Chinese and an en caller in English, field errors included (#15)."""

from __future__ import annotations

import pytest

from market.extensions import db
from tests.datasets.conftest import multipart, uscc
from tests.zh_text import check_answer

ZH = {"Accept-Language": "zh"}
EN = {"Accept-Language": "en"}


@pytest.fixture
def department(as_role):
    return as_role("department")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_inspect_without_a_file(client, department, lang):
    body, content_type = multipart([("other", "x")])
    r = client.post("/api/v1/datasets/inspect", data=body, content_type=content_type,
                    headers={**department[1], "Accept-Language": lang})
    answer = check_answer(r, 422, lang, "inspect without a file")
    assert "file" in answer["errors"]
    if lang == "en":
        assert answer["errors"]["file"] == ["missing"]  # English answers are unchanged


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize(
    "path", ["/api/v1/datasets/99999/versions/1", "/api/v1/datasets/99999/versions/1/status"]
)
def test_unknown_dataset(client, department, lang, path):
    r = client.get(path, headers={**department[1], "Accept-Language": lang})
    answer = check_answer(r, 404, lang, path)
    assert "99999" in answer["message"]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_path_id_no_row_can_have(client, department, lang):
    r = client.get(f"/api/v1/datasets/{2**40}/versions/1",
                   headers={**department[1], "Accept-Language": lang})
    check_answer(r, 404, lang, "huge id")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_registration_errors(client, lang):
    body = {"organization_name": "某公司", "credit_code": uscc(7), "kind": "operator",
            "email": "a@example.com", "password": "a long enough password 1"}
    r = client.post("/api/v1/register", json=body, headers={"Accept-Language": lang})
    answer = check_answer(r, 422, lang, "register as operator")
    assert "kind" in answer["errors"]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_admission_of_an_organization_that_is_not_pending(client, as_role, make_org, lang):
    _, headers = as_role("operator")
    org = make_org("buyer")
    db.session.commit()
    r = client.post(f"/api/v1/organizations/{org.id}/admission",
                    json={"decision": "admit", "reason": ""},
                    headers={**headers, "Accept-Language": lang})
    answer = check_answer(r, 409, lang, "admission of an active organization")
    assert str(org.status) in answer["message"]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_too_large_json_body(app, client, department, lang):
    app.config["MARKET_MAX_JSON_BYTES"] = 64
    try:
        r = client.post("/api/v1/organizations", json={"name": "x" * 200},
                        headers={**department[1], "Accept-Language": lang})
    finally:
        app.config.pop("MARKET_MAX_JSON_BYTES")
    answer = check_answer(r, 413, lang, "JSON too large")
    assert "64" in answer["message"]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_an_upload_that_is_not_multipart(client, department, lang):
    r = client.post("/api/v1/datasets", data=b"a,b\n1,2\n", content_type="text/csv",
                    headers={**department[1], "Accept-Language": lang})
    answer = check_answer(r, 422, lang, "not multipart")
    assert "file" in answer["errors"]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_an_upload_with_two_files(client, department, lang):
    body, content_type = multipart([("file", (b"a\n1\n", "a.csv")), ("file", (b"a\n1\n", "b.csv"))])
    r = client.post("/api/v1/datasets/inspect", data=body, content_type=content_type,
                    headers={**department[1], "Accept-Language": lang})
    check_answer(r, 422, lang, "two files")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_short_password_on_registration(client, lang):
    body = {"organization_name": "某公司", "credit_code": uscc(8), "kind": "buyer",
            "email": "short@example.com", "password": "short"}
    r = client.post("/api/v1/register", json=body, headers={"Accept-Language": lang})
    answer = check_answer(r, 422, lang, "short password")
    assert "password" in answer["errors"]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_json_body_nested_too_deep(client, department, lang):
    body = "[" * 100 + "]" * 100
    r = client.post("/api/v1/organizations", data=body, content_type="application/json",
                    headers={**department[1], "Accept-Language": lang})
    answer = check_answer(r, 400, lang, "nested JSON")
    assert "64" in answer["message"]
