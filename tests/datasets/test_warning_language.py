"""The pipeline report's warnings are stored as msgids with params and shown in the reader's
language: the inspect answer, the department's page, the operator's review queue (issue 15).
Codes inside them (PII kinds, generalization levels) are shown by their translated names."""

from __future__ import annotations

import sqlalchemy as sa
from flask_babel import force_locale

from market.datasets import reasons
from market.datasets.models import DatasetVersion
from market.extensions import db
from market.i18n import N_
from market.pipeline.report import note, note_text
from tests.datasets.conftest import csv_bytes, multipart, sample_rows
from tests.datasets.test_reason_language import _login
from tests.zh_text import assert_chinese, assert_english, english_sentences, visible_text

ZH = {"Accept-Language": "zh"}
EN = {"Accept-Language": "en"}


def _content() -> bytes:
    """Sample rows whose 行业 column has a blank header (a warning with params)."""
    return csv_bytes(sample_rows()).replace("行业".encode(), b"", 1)


def _warnings_of(body: dict) -> list[str]:
    return body["warnings"]


def test_stored_warnings_are_msgids_with_params_and_render_in_both_languages(
    upload, department, data_dir
):
    r = upload(department[1], _content())
    assert r.status_code == 202 and r.get_json()["status"] == "pending_review", r.get_json()
    version = db.session.scalar(
        sa.select(DatasetVersion).where(DatasetVersion.dataset_id == r.get_json()["id"])
    )
    stored = version.report["warnings"]
    assert stored and all(isinstance(w, dict) and "%(" in w["msgid"] for w in stored), stored
    for w in stored:  # values are names and counts, never a cell value
        assert all(isinstance(v, (int, str)) for v in w["params"].values())
        assert not any("上海市" in str(v) for v in w["params"].values())
    english = [note_text(w) for w in stored]
    assert any("has no header; it was named column_7" in w for w in english), english
    # An untreated PII column (it would refuse this upload on k-anonymity): its kind is a code.
    stored = [*stored, note(N_("column '%(name)s' holds %(pii_kind)s values and is published "
                               "without treatment, as the department chose"),
                            name="注册地址", pii_kind="address")]
    with force_locale("zh"):
        zh = reasons.render_all(stored)
    for text in zh:
        assert_chinese(text, "stored warning")
    assert not any("address" in t for t in zh), zh  # the PII kind by its Chinese name
    with force_locale("en"):
        en = reasons.render_all(stored)
    for text in en:
        assert_english(text, "stored warning")
    assert "holds address values" in en[-1], en  # English keeps the code


def _inspect(client, headers, content: bytes, filename: str = "data.csv"):
    body, content_type = multipart([("file", (content, filename))])
    return client.post("/api/v1/datasets/inspect", data=body, headers=headers,
                       content_type=content_type)


def test_the_inspect_answer_gives_warnings_in_the_callers_language(client, department, data_dir):
    zh = _inspect(client, {**department[1], **ZH}, _content())
    assert zh.status_code == 200, zh.get_json()
    assert _warnings_of(zh.get_json()), zh.get_json()
    for text in _warnings_of(zh.get_json()):
        assert_chinese(text, "inspect zh")
    en = _inspect(client, {**department[1], **EN}, _content())
    assert any("has no header" in t for t in _warnings_of(en.get_json())), en.get_json()


def test_the_pages_show_warnings_in_the_page_language(
    upload, department, operator, data_dir, client
):
    body = upload(department[1], _content()).get_json()
    assert body["status"] == "pending_review", body
    _login(client, department[0])
    page = client.get(f"/datasets/{body['id']}?lang=zh").get_data(as_text=True)
    assert 'data-testid="pending-warnings"' in page
    assert "has no header" not in page
    assert "column_7" in page  # the param is still shown
    en = client.get(f"/datasets/{body['id']}?lang=en").get_data(as_text=True)
    assert "has no header; it was named column_7" in en
    _login(client, operator[0])
    queue = client.get("/datasets/review-queue?lang=zh").get_data(as_text=True)
    assert "column_7" in queue
    assert "has no header" not in queue
    section = queue[queue.index("column_7") - 300: queue.index("column_7") + 300]
    assert not english_sentences(visible_text(section)), visible_text(section)
    en = client.get("/datasets/review-queue?lang=en").get_data(as_text=True)
    assert "has no header; it was named column_7" in en


def test_an_old_plain_string_warning_still_renders():
    legacy = "column 3 has no header; it was named column_3"
    with force_locale("zh"):
        assert reasons.render_all([legacy]) == [legacy]


def test_a_treatment_refusal_names_treatments_and_kinds_in_the_callers_language(
    upload, department, data_dir
):
    from tests.datasets.conftest import metadata

    meta = metadata(treatments={"联系电话": "none"})
    zh = upload({**department[1], **ZH}, csv_bytes(sample_rows()), meta=meta)
    assert zh.status_code == 422, zh.get_json()
    message = zh.get_json()["message"] + " ".join(
        str(v) for v in (zh.get_json().get("errors") or {}).values()
    )
    assert_chinese(message, "treatment refusal")
    assert "联系电话" in message, message
    for code in ("none", "mobile", "pseudonymized", "suppressed"):
        assert code not in message, message
    en = upload({**department[1], **EN}, csv_bytes(sample_rows()), meta=meta)
    assert en.status_code == 422, en.get_json()
    text = en.get_json()["message"] + str(en.get_json().get("errors"))
    assert "cannot be none" in text and "mobile" in text, text  # English keeps the codes
