"""Publishing through the API: upload → processing → review → listing, versions, roles, audit."""

from __future__ import annotations

import io
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from market.datasets.models import Dataset, DatasetVersion
from market.extensions import db
from tests.datasets.conftest import (
    csv_bytes,
    event_types,
    events,
    residue,
    sample_rows,
)

EXPECTED_KINDS = {
    "统一社会信用代码": ("credit_code", "pseudonymized", "entity_key"),
    "法定代表人": ("person_name", "masked", "identifier"),
    "法定代表人身份证号": ("resident_id", "pseudonymized", "identifier"),
    "联系电话": ("mobile", "pseudonymized", "identifier"),
    "注册地址": ("address", "generalized", "dimension"),
    "所属区": (None, "none", "dimension"),
    "纳税额(元)": (None, "none", "measure"),
}


def xlsx_bytes(rows: list[dict[str, str]]) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(list(rows[0]))
    for row in rows:
        ws.append(list(row.values()))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def parquet_bytes(rows: list[dict[str, str]]) -> bytes:
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    columns["纳税额(元)"] = [Decimal(v) for v in columns["纳税额(元)"]]
    table = pa.table(columns)
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


FILES = {
    "gbk.csv": lambda rows: csv_bytes(rows, "gbk", "\r\n"),
    "bom.csv": lambda rows: csv_bytes(rows, "utf-8-sig"),
    "data.xlsx": xlsx_bytes,
    "data.parquet": parquet_bytes,
}


@pytest.mark.parametrize("filename", list(FILES))
def test_upload_is_processed_and_awaits_review(upload, department, client, data_dir, filename):
    user, h = department
    r = upload(h, FILES[filename](sample_rows()), filename)
    assert r.status_code == 202, r.get_json()
    body = r.get_json()
    assert body["version"] == 1 and body["status"] == "pending_review"

    status = client.get(f"/api/v1/datasets/{body['id']}/versions/1/status", headers=h).get_json()
    assert status == {"status": "pending_review", "refusal_reasons": [],
                      "progress": {"done": status["progress"]["total"],
                                   "total": status["progress"]["total"], "percent": 100}}

    version = client.get(f"/api/v1/datasets/{body['id']}/versions/1", headers=h).get_json()
    assert version["filename"] == filename
    assert version["file_format"] == filename.rsplit(".", 1)[1].replace("xlsx", "xlsx")
    if filename == "gbk.csv":
        assert version["encoding"].lower() in ("gbk", "gb18030")
    assert version["row_count"] == 60
    assert 0 <= version["quality"]["score"] <= 100
    assert set(version["quality"]["dimensions"]) == {
        "completeness", "validity", "accuracy", "uniqueness", "consistency", "timeliness"}
    assert version["k_anonymity"] is not None and version["k_anonymity"] >= 2
    cols = {c["name"]: c for c in version["columns"]}
    for name, (kind, treatment, role) in EXPECTED_KINDS.items():
        assert (cols[name]["pii_kind"], cols[name]["treatment"], cols[name]["role"]) == (
            kind, treatment, role), name
    # No clamp bound is derived from the data (percentiles are enterprises' values): bounds
    # are the department's declared ranges only, and none was declared here.
    measure = cols["纳税额(元)"]
    assert measure["lower_bound"] is None and measure["upper_bound"] is None

    stored = db.session.get(DatasetVersion, version["id"])
    assert stored.parquet_path == f"datasets/{body['id']}/v1.parquet"
    assert (data_dir / stored.parquet_path).is_file()
    assert residue(data_dir) == []
    dataset = db.session.get(Dataset, body["id"])
    assert dataset.slug == f"d{dataset.id}_enterprise_registry"
    assert dataset.department_id == user.organization_id
    assert [(c.department_id, c.weight) for c in dataset.contributors] == [
        (user.organization_id, 1)]
    assert event_types(body["id"]) == ["dataset.uploaded", "dataset.processed"]


def test_profiles_describe_only_desensitized_output(published):
    dataset_id = published()
    version = db.session.get(Dataset, dataset_id).versions[0]
    profiles = {c.name: c.profile for c in version.columns}
    assert "top" not in profiles["统一社会信用代码"] and "top" not in profiles["联系电话"]
    assert "top" not in profiles["法定代表人"]
    tops = {t["value"] for t in profiles["注册地址"]["top"]}
    assert tops and all(len(v) <= 12 for v in tops)  # districts, not street addresses
    assert {t["value"] for t in profiles["所属区"]["top"]} == {
        "浦东新区", "徐汇区", "静安区", "黄浦区"}
    money = profiles["纳税额(元)"]
    assert money["min"] <= money["mean"] <= money["max"] and money["scale"] == 2
    assert all(0 <= p["null_share"] <= 1 for p in profiles.values())


def test_review_lists_the_dataset_for_everyone(published, operator, as_role, client):
    dataset_id = published()
    _, buyer_h = as_role("buyer")
    assert client.get(f"/api/v1/datasets/{dataset_id}/versions/1/status",
                      headers=buyer_h).status_code == 404
    r = client.post(f"/api/v1/datasets/{dataset_id}/review", headers=operator[1],
                    json={"decision": "approve", "comment": "looks fine"})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["status"] == "listed" and body["version"] == 1
    assert body["costs"] == {"collection": 100_000, "processing": 50_000,
                             "storage_monthly": 1_000, "currency": "CNY"}
    assert {c["name"] for c in body["columns"]} >= set(EXPECTED_KINDS)
    dataset = db.session.get(Dataset, dataset_id)
    assert dataset.current_version.version == 1 and dataset.listed_at is not None
    assert dataset.current_version.reviewed_by_id == operator[0].id
    assert event_types(dataset_id)[-2:] == ["dataset.reviewed", "dataset.listed"]
    # listed: readable by a buyer and even anonymously
    from market.accounts.actor import ANONYMOUS, Actor
    from market.datasets import services

    assert services.get_dataset(db.session, ANONYMOUS, dataset_id).id == dataset_id
    assert services.get_dataset(db.session, Actor.from_user(as_role("buyer")[0]), dataset_id)
    # but a second review is a conflict
    again = client.post(f"/api/v1/datasets/{dataset_id}/review", headers=operator[1],
                        json={"decision": "approve"})
    assert again.status_code == 409


def test_reject_keeps_the_comment_and_deletes_the_output(published, operator, client, data_dir):
    dataset_id = published()
    r = client.post(f"/api/v1/datasets/{dataset_id}/review", headers=operator[1],
                    json={"decision": "reject", "comment": "地址请进一步泛化"})
    assert r.status_code == 200 and r.get_json()["status"] == "rejected"
    version = db.session.get(Dataset, dataset_id).versions[0]
    assert version.status == "rejected" and version.review_comment == "地址请进一步泛化"
    assert version.parquet_path is None
    assert list(data_dir.rglob("*.parquet")) == []
    assert events(dataset_id)[-1].data["decision"] == "reject"


def test_unlisted_dataset_is_invisible_to_others(published, as_role, client):
    dataset_id = published()
    from market.accounts.actor import ANONYMOUS, Actor
    from market.datasets import services
    from market.errors import NotFound

    for kind in ("buyer", "department", "subject"):
        user, h = as_role(kind)
        with pytest.raises(NotFound):
            services.get_dataset(db.session, Actor.from_user(user), dataset_id)
        assert client.get(f"/api/v1/datasets/{dataset_id}/versions", headers=h).status_code == 404
    with pytest.raises(NotFound):
        services.get_dataset(db.session, ANONYMOUS, dataset_id)
    for kind in ("operator", "regulator"):
        _, h = as_role(kind)
        r = client.get(f"/api/v1/datasets/{dataset_id}/versions/1/status", headers=h)
        assert r.status_code == 200


def test_only_departments_upload_and_only_operators_review(upload, as_role, published, client,
                                                           data_dir):
    for kind in ("buyer", "operator", "regulator", "subject"):
        _, h = as_role(kind)
        r = upload(h, csv_bytes(sample_rows(5)))
        assert r.status_code == 403, kind
    assert residue(data_dir) == []
    assert upload({}, csv_bytes(sample_rows(5))).status_code == 401
    dataset_id = published()
    for kind in ("department", "buyer", "regulator"):
        _, h = as_role(kind)
        r = client.post(f"/api/v1/datasets/{dataset_id}/review", headers=h,
                        json={"decision": "approve"})
        assert r.status_code in (403, 404), kind
    _, op_h = as_role("operator")
    bad = client.post(f"/api/v1/datasets/{dataset_id}/review", headers=op_h,
                      json={"decision": "maybe"})
    assert bad.status_code == 422 and "decision" in bad.get_json()["errors"]


def test_a_pending_department_cannot_upload(upload, make_user, auth_header, data_dir):
    user = make_user("department", status="pending")
    assert upload(auth_header(user), csv_bytes(sample_rows(5))).status_code == 403


def test_new_version_supersedes_the_listed_one(published, department, operator, upload, client,
                                               as_role, data_dir):
    dataset_id = published()
    url = f"/api/v1/datasets/{dataset_id}/versions"
    client.post(f"/api/v1/datasets/{dataset_id}/review", headers=operator[1],
                json={"decision": "approve"})
    rows = sample_rows(80)
    r = upload(department[1], csv_bytes(rows), "v2.csv",
               {"costs": {"collection": 1, "processing": 2, "storage_monthly": 3}}, url=url)
    assert r.status_code == 202, r.get_json()
    assert r.get_json() == {"id": dataset_id, "version": 2, "status": "pending_review"}
    dataset = db.session.get(Dataset, dataset_id)
    assert dataset.status == "listed" and dataset.current_version.version == 1
    assert dataset.cost_collection_fen == 1
    # a third upload waits for the review of the second
    third = upload(department[1], csv_bytes(rows), "v3.csv", {}, url=url)
    assert third.status_code == 409
    client.post(f"/api/v1/datasets/{dataset_id}/review", headers=operator[1],
                json={"decision": "approve"})
    db.session.expire_all()
    dataset = db.session.get(Dataset, dataset_id)
    assert [v.status for v in dataset.versions] == ["superseded", "listed"]
    assert dataset.current_version.version == 2 and dataset.current_version.row_count == 80
    assert (data_dir / f"datasets/{dataset_id}/v2.parquet").is_file()
    listing = client.get(url, headers=department[1]).get_json()
    assert [v["version"] for v in listing["items"]] == [2, 1] and listing["total"] == 2
    listed = [e for e in events(dataset_id) if e.type == "dataset.listed"]
    assert listed[-1].data["superseded"] == 1
    # another department: may see the listed dataset but not add versions
    _, other = as_role("department")
    assert upload(other, csv_bytes(rows), "x.csv", {}, url=url).status_code == 403
    assert residue(data_dir) == []


def test_another_department_cannot_add_a_version_to_an_unlisted_dataset(published, as_role,
                                                                       upload, data_dir):
    dataset_id = published()
    _, other = as_role("department")
    r = upload(other, csv_bytes(sample_rows(5)), "x.csv", {},
               url=f"/api/v1/datasets/{dataset_id}/versions")
    assert r.status_code == 404
    assert residue(data_dir) == []


def test_openapi_documents_the_publication_endpoints(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert "post" in paths["/api/v1/datasets"]
    assert "multipart/form-data" in paths["/api/v1/datasets"]["post"]["requestBody"]["content"]
    for path in ("/api/v1/datasets/{dataset_id}/review",
                 "/api/v1/datasets/{dataset_id}/versions",
                 "/api/v1/datasets/{dataset_id}/versions/{number}/status",
                 "/api/v1/datasets/{dataset_id}/versions/{number}/treatments"):
        assert path in paths, path
