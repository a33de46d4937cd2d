"""Refused and broken uploads: clear reasons naming the row or column, and no residue."""

from __future__ import annotations

import json

import pytest

from market.datasets import services
from market.datasets.models import Dataset
from market.extensions import db
from tests.datasets.conftest import csv_bytes, event_types, metadata, residue, sample_rows


@pytest.fixture
def staging_calls(monkeypatch):
    """Counts staging files created (a refused upload must create none)."""
    calls: list[str] = []
    original = services.new_staging_file

    def counting(filename):
        calls.append(filename)
        return original(filename)

    monkeypatch.setattr(services, "new_staging_file", counting)
    return calls


@pytest.mark.parametrize(
    ("overrides", "why"),
    [({"open_grade": "restricted"}, "restricted"), ({"confidential": True}, "confidential")],
)
def test_refused_upload_never_stores_the_file(upload, department, data_dir, staging_calls,
                                              client, overrides, why):
    r = upload(department[1], csv_bytes(sample_rows()), "机密.csv", metadata(**overrides))
    assert r.status_code == 202, r.get_json()
    body = r.get_json()
    assert body["status"] == "refused" and why in body["refusal_reasons"][0]
    assert staging_calls == []  # the metadata came first: not one byte was written
    assert list(data_dir.rglob("*.*")) == []
    dataset = db.session.get(Dataset, body["id"])
    assert dataset.status == "refused" and dataset.confidential is overrides.get(
        "confidential", False)
    version = dataset.versions[0]
    assert (version.status, version.size_bytes, version.parquet_path) == ("refused", 0, None)
    assert version.filename == "机密.csv"
    assert event_types(body["id"]) == ["dataset.refused"]
    status = client.get(f"/api/v1/datasets/{body['id']}/versions/1/status",
                        headers=department[1]).get_json()
    assert status["status"] == "refused" and status["refusal_reasons"]
    # and no new version can be added to it
    again = upload(department[1], csv_bytes(sample_rows(5)), "x.csv", {},
                   url=f"/api/v1/datasets/{body['id']}/versions")
    assert again.status_code == 409


def test_refused_upload_sent_file_first_is_deleted_before_answering(upload, department, data_dir,
                                                                    staging_calls):
    r = upload(department[1], csv_bytes(sample_rows()), "x.csv",
               metadata(open_grade="restricted"), metadata_first=False)
    assert r.get_json()["status"] == "refused"
    assert len(staging_calls) == 1  # it had to be staged, as the metadata came later
    assert [p for p in data_dir.rglob("*") if p.is_file()] == []


BROKEN = {
    "empty": (b"", "data.csv", "empty"),
    "binary garbage": (bytes(range(256)) * 40, "data.csv", "UTF-8"),
    "ragged row": (csv_bytes(sample_rows(20)) + b"1,2\n", "data.csv", "row 22"),
    "unclosed quote": (csv_bytes(sample_rows(20)) + b'"x,1,2,3,4,5,6,7,8\n', "data.csv", "row 22"),
    "utf-8 mark on gbk": (b"\xef\xbb\xbf" + csv_bytes(sample_rows(20), "gbk"), "data.csv",
                          "UTF-8"),
    "xlsx that is csv": (csv_bytes(sample_rows(5)), "data.xlsx", "Excel"),
    "truncated parquet": (b"PAR1" + b"\0" * 100, "data.parquet", "Parquet"),
    "unknown type": (b"%PDF-1.4", "report.pdf", ".pdf"),
    "missing entity key": (b"a,b\n1,2\n", "data.csv", "统一社会信用代码"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_file_fails_with_a_reason_and_leaves_nothing(upload, department, data_dir, client,
                                                            case):
    content, filename, expected = BROKEN[case]
    r = upload(department[1], content, filename)
    assert r.status_code == 202, r.get_json()
    body = r.get_json()
    assert body["status"] == "failed"
    assert expected in body["refusal_reasons"][0]
    assert residue(data_dir) == [] and list(data_dir.rglob("*.parquet")) == []
    assert event_types(body["id"]) == ["dataset.uploaded", "dataset.failed"]
    dataset = db.session.get(Dataset, body["id"])
    assert dataset.status == "failed" and dataset.versions[0].parquet_path is None


def test_failure_reasons_name_the_row_not_the_value(upload, department, data_dir):
    rows = sample_rows(10)
    content = csv_bytes(rows) + f"{rows[0]['统一社会信用代码']},extra\n".encode()
    body = upload(department[1], content).get_json()
    reason = body["refusal_reasons"][0]
    assert "row 12" in reason and rows[0]["统一社会信用代码"] not in reason


def test_too_many_columns_is_refused_before_processing(upload, department, data_dir, app):
    header = ",".join(f"c{i}" for i in range(100_000)).encode()
    r = upload(department[1], header + b"\n" + b"1," * 99_999 + b"1\n")
    assert r.status_code == 422
    assert "100000 columns" in r.get_json()["message"] and "file" in r.get_json()["errors"]
    assert [p for p in data_dir.rglob("*") if p.is_file()] == []
    assert db.session.query(Dataset).count() == 0


def test_one_huge_cell_is_refused_cleanly(upload, department, data_dir):
    content = b"id,v\n1," + b"x" * (2 << 20) + b"\n2,y\n"
    r = upload(department[1], content, meta=metadata(entity_key="id"))
    assert r.status_code == 422
    assert "line 2" in r.get_json()["message"]
    assert [p for p in data_dir.rglob("*") if p.is_file()] == []


def test_path_tricks_in_the_file_name_are_neutralized(upload, department, data_dir):
    r = upload(department[1], csv_bytes(sample_rows()), "../../../../etc/passwd.csv")
    assert r.get_json()["status"] == "pending_review"
    version = db.session.get(Dataset, r.get_json()["id"]).versions[0]
    assert version.filename == "passwd.csv"
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    assert files == [data_dir / version.parquet_path]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ("{" + " " * (70 * 1024) + "}", "metadata"),
        ("not json", "metadata"),
        (json.dumps({k: v for k, v in metadata().items() if k != "costs"}), "costs"),
        (json.dumps(metadata(costs={"collection": -5, "processing": 0, "storage_monthly": 0})),
         "costs"),
        (json.dumps(metadata(open_grade="secret")), "open_grade"),
    ],
)
@pytest.mark.parametrize("metadata_first", [True, False])
def test_invalid_metadata_is_422_naming_the_field(upload, department, data_dir, raw, field,
                                                  metadata_first):
    r = upload(department[1], csv_bytes(sample_rows(5)), raw_metadata=raw,
               metadata_first=metadata_first)
    assert r.status_code == 422, r.get_json()
    assert field in r.get_json()["errors"]
    assert [p for p in data_dir.rglob("*") if p.is_file()] == []


def test_missing_parts(client, department, data_dir):
    from tests.datasets.conftest import multipart

    body, ctype = multipart([("metadata", json.dumps(metadata()))])
    r = client.post("/api/v1/datasets", data=body, content_type=ctype, headers=department[1])
    assert r.status_code == 422 and "file" in r.get_json()["errors"]
    r = client.post("/api/v1/datasets", json=metadata(), headers=department[1])
    assert r.status_code == 422
    body, ctype = multipart([("metadata", json.dumps(metadata())), ("file", (b"a", "a.csv")),
                             ("file", (b"b", "b.csv"))])
    r = client.post("/api/v1/datasets", data=body, content_type=ctype, headers=department[1])
    assert r.status_code == 422
    assert [p for p in data_dir.rglob("*") if p.is_file()] == []


def test_upload_over_the_size_cap_is_413(app, upload, department, data_dir):
    old = app.config["MAX_CONTENT_LENGTH"]
    app.config["MAX_CONTENT_LENGTH"] = 4096
    try:
        r = upload(department[1], csv_bytes(sample_rows(200)))
    finally:
        app.config["MAX_CONTENT_LENGTH"] = old
    assert r.status_code == 413
    body = r.get_json()
    assert body["code"] == 413 and body["status"] and body["message"]
    assert [p for p in data_dir.rglob("*") if p.is_file()] == []


def test_unexpected_errors_are_recorded_generically(upload, department, data_dir, monkeypatch,
                                                    caplog):
    from market.datasets import processing

    phone = "139" + "12345678"

    def boom(*args, **kwargs):
        raise RuntimeError(f"secret value {phone} inside")

    monkeypatch.setattr(processing, "describe_columns", boom)
    r = upload(department[1], csv_bytes(sample_rows()))
    body = r.get_json()
    assert body["status"] == "failed"
    assert body["refusal_reasons"] == [processing.GENERIC_FAILURE]
    assert "13912345678" not in caplog.text and "RuntimeError" in caplog.text
    assert [p for p in data_dir.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("cut", ["in the file", "in the metadata", "no closing boundary"])
def test_malformed_multipart_is_422_and_leaves_nothing(client, department, data_dir, cut):
    from tests.datasets.conftest import multipart

    body, ctype = multipart([("metadata", json.dumps(metadata())),
                             ("file", (csv_bytes(sample_rows()), "a.csv"))])
    if cut == "in the file":
        body = body[: len(body) - 500]
    elif cut == "in the metadata":
        body = body[:120]
    else:
        body = body[: body.rindex(b"--")]
    r = client.post("/api/v1/datasets", data=body, content_type=ctype, headers=department[1])
    assert r.status_code == 422, r.get_json()
    assert [p for p in data_dir.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("grade", ["conditional", "restricted"])
def test_browser_session_upload_streams_to_the_data_folder(client, make_user, data_dir,
                                                           monkeypatch, grade):
    """With a session cookie the CSRF check parses the form before the view: the file part
    must still go to a staging file under the data folder, never to the system temp dir."""
    import tempfile

    from tests.accounts.test_web import csrf_from, login
    from tests.datasets.conftest import multipart

    def no_temp(*args, **kwargs):
        raise AssertionError("an upload went to the system temp dir")

    user = make_user("department")
    login(client, user.email)
    token = csrf_from(client.get("/dashboard").get_data(as_text=True))
    monkeypatch.setattr(tempfile, "SpooledTemporaryFile", no_temp)
    monkeypatch.setattr(tempfile, "TemporaryFile", no_temp)
    from market.datasets import api

    preparsed = []
    original = api._from_preparsed
    monkeypatch.setattr(api, "_from_preparsed", lambda store: preparsed.append(1) or original(store))
    body, ctype = multipart([("metadata", json.dumps(metadata(open_grade=grade))),
                             ("file", (csv_bytes(sample_rows(4000)), "big.csv"))])
    assert len(body) > 500 * 1024  # beyond what Werkzeug would keep in memory
    assert client.post("/api/v1/datasets", data=body, content_type=ctype).status_code == 400
    r = client.post("/api/v1/datasets", data=body, content_type=ctype,
                    headers={"X-CSRFToken": token})
    assert r.status_code == 202, r.get_json()
    expected = "refused" if grade == "restricted" else "pending_review"
    assert r.get_json()["status"] == expected
    assert preparsed == [1]  # the CSRF check had parsed the form first
    assert residue(data_dir) == []


def test_k_anonymity_out_of_reach_is_refused(upload, department, data_dir):
    r = upload(department[1], csv_bytes(sample_rows()), meta=metadata(k_min=1000))
    body = r.get_json()
    assert body["status"] == "refused", body
    assert "k-anonymity" in body["refusal_reasons"][0] and "注册地址" in body["refusal_reasons"][0]
    failed = event_types(body["id"])
    assert failed == ["dataset.uploaded", "dataset.failed"]
    assert residue(data_dir) == [] and list(data_dir.rglob("*.parquet")) == []
