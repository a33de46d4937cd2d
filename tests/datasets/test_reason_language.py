"""Failure and refusal reasons are stored as msgids with params and shown in the reader's
language: API answers (Accept-Language), the department's pages (the page language), the
synchronous 422 of inspect/upload; the audit event and the CLI keep English (issue 15)."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from flask_babel import force_locale

from market.datasets import reasons
from market.datasets.models import Dataset, DatasetVersion
from market.extensions import db
from tests.datasets.conftest import csv_bytes, events, metadata, multipart, sample_rows

ZH = {"Accept-Language": "zh"}
EN = {"Accept-Language": "en"}

# name: (file, metadata overrides, English reason, Chinese reason)
FAILED = {
    "duplicate header column": (
        b"a,b,a\n1,2,3\n4,5,6\n",
        {"entity_key": "b"},
        "column name 'a' appears twice in the header",
        "表头中列名“a”出现了两次",
    ),
    "bad encoding line": (
        "名称,b\n甲,2\n".encode() + b"\xff\xfe,3\n",
        {"entity_key": "b"},
        "line 3 is not valid UTF-8 text",
        "第 3 行不是有效的 UTF-8 文本",
    ),
    "ragged row": (
        csv_bytes(sample_rows(20)) + b"1,2\n",
        {},
        "row 22 has 2 fields but the header has 9",
        "第 22 行有 2 个字段，但表头有 9 列",
    ),
}


def _login(client, user):
    from market.auth import session_values

    values = session_values(user)
    db.session.commit()
    with client.session_transaction() as session:
        session.clear()
        session.permanent = True
        session.update(values)
    return client


@pytest.mark.parametrize("case", list(FAILED))
def test_a_failed_upload_reason_is_stored_as_msgid_and_answered_in_the_callers_language(
    upload, department, data_dir, client, case
):
    content, overrides, english, chinese = FAILED[case]
    zh_headers = {**department[1], **ZH}
    r = upload(zh_headers, content, meta=metadata(**overrides))
    assert r.status_code == 202, r.get_json()
    body = r.get_json()
    assert body["status"] == "failed"
    assert body["refusal_reasons"] == [chinese]

    version = db.session.scalar(
        sa.select(DatasetVersion).where(DatasetVersion.dataset_id == body["id"])
    )
    (stored,) = version.refusal_reasons
    assert isinstance(stored, dict) and set(stored) == {"msgid", "params"}
    assert "%(" in stored["msgid"]
    assert all(isinstance(v, (int, str)) for v in stored["params"].values())
    # the audit trail keeps the English text
    (failed,) = [e for e in events(body["id"]) if e.type == "dataset.failed"]
    assert failed.data["reasons"] == [english]

    dataset_id = body["id"]
    for headers, text in ((ZH, chinese), (EN, english)):
        h = {**department[1], **headers}
        status = client.get(f"/api/v1/datasets/{dataset_id}/versions/1/status", headers=h)
        assert status.get_json()["refusal_reasons"] == [text]
        one = client.get(f"/api/v1/datasets/{dataset_id}", headers=h).get_json()
        assert one["refusal_reasons"] == [text]
        versions = client.get(f"/api/v1/datasets/{dataset_id}/versions/1", headers=h)
        assert versions.get_json()["refusal_reasons"] == [text], versions.get_json()


def test_the_department_pages_show_the_reason_in_the_page_language(
    upload, department, data_dir, client
):
    content, overrides, english, chinese = FAILED["duplicate header column"]
    body = upload(department[1], content, meta=metadata(**overrides)).get_json()
    assert body["refusal_reasons"] == [english]  # the test client asks for English
    _login(client, department[0])
    for path in ("/datasets/mine", f"/datasets/{body['id']}"):
        zh = client.get(path).get_data(as_text=True)  # pages are Chinese by default
        assert chinese in zh and "appears twice" not in zh, path
    for path in ("/datasets/mine", f"/datasets/{body['id']}"):
        en = client.get(path + "?lang=en").get_data(as_text=True)
        assert "column name &#39;a&#39; appears twice in the header" in en, path
        assert chinese not in en, path


def test_an_old_plain_string_reason_still_renders(upload, department, data_dir, client):
    from market.datasets.processing import NO_WORKER

    content, overrides, _english, _chinese = FAILED["duplicate header column"]
    body = upload(department[1], content, meta=metadata(**overrides)).get_json()
    version = db.session.get(Dataset, body["id"]).versions[0]
    legacy = "line 7 is not valid GBK text"  # formatted English, as rows were before
    version.refusal_reasons = [legacy, NO_WORKER]
    db.session.commit()
    zh = client.get(
        f"/api/v1/datasets/{body['id']}/versions/1/status", headers={**department[1], **ZH}
    ).get_json()["refusal_reasons"]
    assert zh[0] == legacy  # not in the catalogue: shown as it was stored
    assert zh[1] != NO_WORKER and re.search("[\u4e00-\u9fff]", zh[1])  # a msgid: translated
    en = client.get(
        f"/api/v1/datasets/{body['id']}/versions/1/status", headers={**department[1], **EN}
    ).get_json()["refusal_reasons"]
    assert en == [legacy, NO_WORKER]
    _login(client, department[0])
    page = client.get(f"/datasets/{body['id']}").get_data(as_text=True)
    assert legacy in page and zh[1] in page


def _inspect(client, headers, content: bytes, filename: str = "data.csv", entity_key=None):
    body, content_type = multipart([("file", (content, filename))])
    url = "/api/v1/datasets/inspect" + (f"?entity_key={entity_key}" if entity_key else "")
    return client.post(url, data=body, headers=headers, content_type=content_type)


@pytest.mark.parametrize(
    ("content", "filename", "english", "chinese"),
    [
        (b"a,b,a\n1,2,3\n", "data.csv", "column name 'a' appears twice in the header",
         "表头中列名“a”出现了两次"),
        ("名称,b\n甲,2\n".encode() + b"\xff\xfe,3\n", "data.csv", "line 3 is not valid UTF-8 text",
         "第 3 行不是有效的 UTF-8 文本"),
        (b"%PDF-1.4", "report.pdf", "unsupported file type .pdf: upload CSV, XLSX or Parquet",
         "不支持的文件类型 .pdf：请上传 CSV、XLSX 或 Parquet 文件"),
    ],
)
def test_inspect_422_is_in_the_callers_language(
    client, department, data_dir, content, filename, english, chinese
):
    zh = _inspect(client, {**department[1], **ZH}, content, filename)
    assert zh.status_code == 422
    assert zh.get_json()["message"] == chinese and zh.get_json()["errors"]["file"] == [chinese]
    en = _inspect(client, {**department[1], **EN}, content, filename)
    assert en.status_code == 422 and en.get_json()["message"] == english


def test_inspect_unknown_entity_key_is_in_the_callers_language(client, department, data_dir):
    r = _inspect(client, {**department[1], **ZH}, b"a,b\n1,2\n", entity_key="zzz")
    assert r.status_code == 422
    assert r.get_json()["errors"]["entity_key"] == ["文件中没有实体键列“zzz”"]


def test_upload_422_for_a_treatment_is_in_the_callers_language(upload, department, data_dir):
    meta = metadata(treatments={"zzz": "suppressed"})
    zh = upload({**department[1], **ZH}, csv_bytes(sample_rows(10)), meta=meta)
    assert zh.status_code == 422, zh.get_json()
    assert zh.get_json()["errors"]["treatments.zzz"] == ["文件中没有列“zzz”"]
    en = upload({**department[1], **EN}, csv_bytes(sample_rows(10)), meta=meta)
    assert en.get_json()["errors"]["treatments.zzz"] == ["column 'zzz' is not in the file"]
    meta = metadata(treatments={"联系电话": "none"})
    zh = upload({**department[1], **ZH}, csv_bytes(sample_rows(10)), meta=meta)
    assert zh.status_code == 422, zh.get_json()
    (text,) = zh.get_json()["errors"]["treatments.联系电话"]
    # The treatment and the PII kind by their Chinese names, not their codes (i18n-sweep).
    assert text.startswith("列“联系电话”不能使用“原样发布”处理：该列是直接标识符（手机号）"), text


def test_upload_422_for_too_many_columns_is_in_the_callers_language(
    app, upload, department, data_dir, monkeypatch
):
    monkeypatch.setitem(app.config, "MARKET_MAX_COLUMNS", 2)
    r = upload({**department[1], **ZH}, b"a,b,c\n1,2,3\n", meta=metadata(entity_key="a"))
    assert r.status_code == 422
    assert r.get_json()["message"] == "该文件有 3 列，最多接受 2 列。"


@pytest.mark.parametrize(
    ("stored", "english", "chinese"),
    [
        ("the file is empty", "the file is empty", "该文件为空"),
        # old rows: formatted English that the catalogue does not know is shown as it is
        ("already formatted text, row 4", "already formatted text, row 4",
         "already formatted text, row 4"),
        ({"msgid": "line %(line)s is not valid UTF-8 text", "params": {"line": 5}},
         "line 5 is not valid UTF-8 text", "第 5 行不是有效的 UTF-8 文本"),
        # a damaged entry (params missing) shows its msgid rather than failing the page
        ({"msgid": "line %(line)s is not valid UTF-8 text", "params": {}},
         "line %(line)s is not valid UTF-8 text", "第 %(line)s 行不是有效的 UTF-8 文本"),
        ({"msgid": "line %(line)s is not valid UTF-8 text", "params": {"other": 1}},
         "line %(line)s is not valid UTF-8 text", "line %(line)s is not valid UTF-8 text"),
    ],
)
def test_render_reads_every_stored_shape(app, stored, english, chinese):
    assert reasons.render(stored, english=True) == english
    with app.test_request_context("/api/v1/health"), force_locale("zh"):
        assert reasons.render(stored, english=True) == english  # CLI and audit: English
        assert reasons.render(stored) == chinese
    with app.test_request_context("/api/v1/health"), force_locale("en"):
        assert reasons.render(stored) == english
    assert reasons.render_all(None) == []


def test_entry_keeps_param_less_msgids_as_plain_strings():
    assert reasons.entry("the file is empty") == "the file is empty"
    assert reasons.entry("row %(number)s", {"number": 3}) == {
        "msgid": "row %(number)s", "params": {"number": 3}
    }


def test_a_percent_sign_in_a_column_name_is_a_value_not_a_format(app):
    from market.pipeline.errors import KAnonymityTooLow, MalformedFile
    from market.pipeline.readers import clean_names

    with pytest.raises(MalformedFile) as caught:
        clean_names(["rate%s", "b", "rate%s"], [])
    stored = reasons.of_error(caught.value)
    assert stored == {
        "msgid": "column name '%(name)s' appears twice in the header",
        "params": {"name": "rate%s"},
    }
    with app.test_request_context("/api/v1/health"), force_locale("zh"):
        assert reasons.render(stored) == "表头中列名“rate%s”出现了两次"
    k = KAnonymityTooLow(caught.value.msgid, k=1, k_min=2, quasi_identifiers=["x"], name="x")
    assert k.params == {"k": 1, "k_min": 2, "name": "x"} and k.k == 1 and k.k_min == 2
