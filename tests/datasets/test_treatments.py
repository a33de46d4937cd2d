"""Treatment overrides: chosen at upload, and only made stricter after processing."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from market.datasets.models import Dataset
from market.extensions import db
from tests.datasets.conftest import csv_bytes, events, metadata, residue, sample_rows


def _columns(dataset_id: int) -> dict:
    db.session.expire_all()
    return {c.name: c for c in db.session.get(Dataset, dataset_id).versions[-1].columns}


def test_upload_overrides_are_applied(published, data_dir):
    dataset_id = published(treatments={"联系电话": "suppressed", "所属区": "masked"})
    cols = _columns(dataset_id)
    assert (cols["联系电话"].treatment, cols["联系电话"].role) == ("suppressed", "other")
    assert cols["所属区"].treatment == "masked" and cols["所属区"].role == "identifier"
    version = db.session.get(Dataset, dataset_id).versions[0]
    names = pq.read_schema(data_dir / version.parquet_path).names
    assert "联系电话" not in names and "所属区" in names
    assert version.treatment_overrides == {"联系电话": "suppressed", "所属区": "masked"}
    assert events(dataset_id)[0].data["overrides"] == ["所属区", "联系电话"]


@pytest.mark.parametrize(
    ("treatments", "field"),
    [
        ({"联系电话": "none"}, "treatments.联系电话"),
        ({"法定代表人身份证号": "none"}, "treatments.法定代表人身份证号"),
        ({"统一社会信用代码": "suppressed"}, "treatments.统一社会信用代码"),
        ({"所属区": "generalized"}, "treatments.所属区"),
        ({"no such column": "masked"}, "treatments.no such column"),
    ],
)
def test_upload_overrides_that_are_not_allowed_are_422(upload, department, data_dir, treatments,
                                                       field):
    r = upload(department[1], csv_bytes(sample_rows()), meta=metadata(treatments=treatments))
    assert r.status_code == 422, r.get_json()
    assert field in r.get_json()["errors"]
    assert db.session.query(Dataset).count() == 0
    assert [p for p in data_dir.rglob("*") if p.is_file()] == []


def test_stricter_change_rewrites_the_output(published, department, client, data_dir):
    dataset_id = published()
    before = db.session.get(Dataset, dataset_id).versions[0]
    old_sha, old_k = before.parquet_sha256, before.k_anonymity
    url = f"/api/v1/datasets/{dataset_id}/versions/1/treatments"
    r = client.put(url, headers=department[1], json={"法定代表人": "suppressed",
                                                     "注册地址": "suppressed",
                                                     "行业": "none"})
    assert r.status_code == 200, r.get_json()
    cols = {c["name"]: c for c in r.get_json()["columns"]}
    assert cols["法定代表人"]["treatment"] == "suppressed" and cols["行业"]["treatment"] == "none"
    version = db.session.get(Dataset, dataset_id).versions[0]
    path = data_dir / version.parquet_path
    table = pq.read_table(path)
    assert "法定代表人" not in table.column_names and "注册地址" not in table.column_names
    assert table.num_rows == 60
    from market.datasets.services import sha256_file

    assert version.parquet_sha256 == sha256_file(path) != old_sha
    # the address was the only quasi-identifier left: no k to speak of any more
    assert old_k is not None and version.k_anonymity is None
    assert version.report["quasi_identifiers"] == []
    assert events(dataset_id)[-1].type == "dataset.treatments_changed"
    assert events(dataset_id)[-1].data["suppressed"] == sorted(["注册地址", "法定代表人"])
    assert residue(data_dir) == []


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"联系电话": "none"}, "must not be published"),
        ({"注册地址": "none"}, "loosen"),
        ({"联系电话": "masked"}, "loosen"),
        ({"所属区": "masked"}, "raw file"),
        ({"统一社会信用代码": "suppressed"}, "entity key"),
        ({"missing": "suppressed"}, "not in the file"),
    ],
)
def test_changes_that_need_the_raw_file_or_loosen_are_422(published, department, client, change,
                                                          needle):
    dataset_id = published()
    r = client.put(f"/api/v1/datasets/{dataset_id}/versions/1/treatments",
                   headers=department[1], json=change)
    assert r.status_code == 422, r.get_json()
    (column,) = change
    assert column in r.get_json()["errors"]
    assert needle in r.get_json()["message"]


def test_only_the_owner_and_only_before_review(published, department, operator, as_role, client):
    dataset_id = published()
    url = f"/api/v1/datasets/{dataset_id}/versions/1/treatments"
    _, other = as_role("department")
    assert client.put(url, headers=other, json={"行业": "suppressed"}).status_code == 404
    assert client.put(url, headers=operator[1], json={"行业": "suppressed"}).status_code == 403
    assert client.put(url, headers=department[1], json={"行业": "deleted"}).status_code == 422
    assert client.put(url, headers=department[1], json={}).status_code == 422
    client.post(f"/api/v1/datasets/{dataset_id}/review", headers=operator[1],
                json={"decision": "approve"})
    assert client.put(url, headers=department[1], json={"行业": "suppressed"}).status_code == 409


def _inspect(client, headers, content: bytes, filename: str = "data.csv", entity_key=None):
    from tests.datasets.conftest import multipart

    body, content_type = multipart([("file", (content, filename))])
    url = "/api/v1/datasets/inspect" + (f"?entity_key={entity_key}" if entity_key else "")
    return client.post(url, data=body, headers=headers, content_type=content_type)


def test_inspect_proposes_treatments_and_keeps_nothing(client, department, data_dir, caplog):
    rows = sample_rows(30)
    # the first lines of a GBK file, as the upload page sends them
    r = _inspect(client, department[1], csv_bytes(rows, "gbk"), entity_key="统一社会信用代码")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["format"] == "csv" and body["encoding"].lower() in ("gbk", "gb18030")
    columns = {c["name"]: c for c in body["columns"]}
    assert columns["统一社会信用代码"]["allowed_treatments"] == ["pseudonymized"]
    phone = columns["联系电话"]
    assert phone["pii_kind"] == "mobile" and phone["default_treatment"] == "pseudonymized"
    assert "none" not in phone["allowed_treatments"] and "masked" in phone["allowed_treatments"]
    assert columns["行业"]["pii_kind"] is None and "none" in columns["行业"]["allowed_treatments"]
    assert residue(data_dir) == [] and list(data_dir.rglob("*.parquet")) == []
    text = r.get_data(as_text=True) + caplog.text
    assert not [v for row in rows for v in row.values() if len(v) > 4 and v in text]


def test_inspect_refuses_bad_input_and_other_roles(client, department, as_role, data_dir):
    bad = _inspect(client, department[1], b"\x00\x01\x02binary\xff" * 50, "x.csv")
    assert bad.status_code == 422 and bad.get_json()["errors"]["file"]
    unknown_key = _inspect(client, department[1], csv_bytes(sample_rows(5)), entity_key="nope")
    assert unknown_key.status_code == 422 and "entity_key" in unknown_key.get_json()["errors"]
    assert _inspect(client, as_role("buyer")[1], csv_bytes(sample_rows(5))).status_code == 403
    assert _inspect(client, {}, csv_bytes(sample_rows(5))).status_code == 401
    assert residue(data_dir) == []
