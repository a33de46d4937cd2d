"""Raw personal data never persists: not in the data folder, the database, the logs, the
system temp dir or the API answers, whatever the upload's fate."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import sqlalchemy as sa

from market.db import Base
from market.extensions import db
from tests.datasets.conftest import csv_bytes, metadata, sample_rows

MAX_SCANNED_FILE = 64 << 20


def raw_values(rows: list[dict[str, str]]) -> set[str]:
    values: set[str] = set()
    for row in rows:
        values.update({row["统一社会信用代码"], row["法定代表人"], row["法定代表人身份证号"],
                       row["联系电话"], row["注册地址"]})
        values.add(row["注册地址"].split("区", 1)[1])  # the street part alone
    return values


def _needles(values: set[str]) -> list[bytes]:
    out = []
    for v in values:
        out.append(v.encode("utf-8"))
        out.append(v.encode("gbk"))
        out.append(v.encode("utf-16-le"))
    return out


def _leaks_in_bytes(data: bytes, needles: list[bytes]) -> list[bytes]:
    return [n for n in needles if n in data]


def _pytest_root(basetemp: Path) -> Path:
    """pytest's temp root for this user (``/tmp/pytest-of-<user>``): every worker's test
    folders, this test's data folder among them, which the app's own temp files never use."""
    for folder in (basetemp, *basetemp.parents):
        if folder.name.startswith("pytest-of-"):
            return folder
    return basetemp


def _new_temp_files(since: float, skip: Path) -> list[Path]:
    """Files written since ``since`` in the system temp dir, outside ``skip``.

    Other xdist workers' test folders are skipped with ``skip``: their own uploads hold the
    same sample rows, legitimately, while their tests run.
    """
    found = []
    for root, dirs, files in os.walk(tempfile.gettempdir(), onerror=lambda e: None):
        if Path(root).is_relative_to(skip):
            dirs[:] = []
            continue
        for name in files:
            path = Path(root, name)
            try:
                st = path.stat()
            except OSError:
                continue
            if st.st_mtime >= since and st.st_size <= MAX_SCANNED_FILE:
                found.append(path)
    return found


def test_raw_pii_is_never_persisted(
    upload, department, operator, client, data_dir, caplog, tmp_path_factory
):
    caplog.set_level(logging.DEBUG)
    start = time.time() - 1
    rows = sample_rows(80)
    values = raw_values(rows)
    assert len(values) == 6 * 80  # all distinct
    answers: list[str] = []

    def keep(response):
        answers.append(response.get_data(as_text=True))
        return response

    # published (GBK, CRLF), with a stricter change, reviewed and listed
    body = keep(upload(department[1], csv_bytes(rows, "gbk", "\r\n"), "登记.csv")).get_json()
    assert body["status"] == "pending_review"
    ds = body["id"]
    keep(client.get(f"/api/v1/datasets/{ds}/versions/1/status", headers=department[1]))
    keep(client.put(f"/api/v1/datasets/{ds}/versions/1/treatments", headers=department[1],
                    json={"法定代表人": "suppressed"}))
    keep(client.get(f"/api/v1/datasets/{ds}/versions/1", headers=department[1]))
    keep(client.post(f"/api/v1/datasets/{ds}/review", headers=operator[1],
                     json={"decision": "approve"}))
    keep(client.get(f"/api/v1/datasets/{ds}/versions", headers=operator[1]))
    # a failing upload whose bad row is full of PII
    bad = csv_bytes(rows) + ",".join(list(rows[3].values())[:4]).encode() + b"\n"
    failed = keep(upload(department[1], bad, "bad.csv")).get_json()
    assert failed["status"] == "failed" and "row 82" in failed["refusal_reasons"][0]
    # an override refused at upload, naming a column that holds PII
    refused = keep(upload(department[1], csv_bytes(rows), "x.csv",
                          metadata(treatments={"联系电话": "none"})))
    assert refused.status_code == 422
    # a restricted upload, refused on its metadata
    keep(upload(department[1], csv_bytes(rows), "r.csv", metadata(open_grade="restricted")))

    needles = _needles(values)
    assert len(_leaks_in_bytes(csv_bytes(rows, "gbk"), needles)) >= 400  # the scan can see them

    # 1. the data folder: raw bytes of every file, and the decoded Parquet content
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    assert not [p for p in files if p.name.startswith(".partial")]
    assert [p.suffix for p in files] == [".parquet"]
    for path in files:
        assert _leaks_in_bytes(path.read_bytes(), needles) == [], path
        text = str(pq.read_table(path).to_pylist()) + str(pq.read_schema(path).metadata)
        assert [v for v in values if v in text] == [], path

    # 2. the database: every column of every row of every table
    db.session.flush()
    for table in Base.metadata.sorted_tables:
        for row in db.session.execute(sa.select(table)).all():
            text = repr(tuple(row))
            assert [v for v in values if v in text] == [], table.name

    # 3. the logs, at DEBUG, including the pipeline's and the jobs'
    assert [v for v in values if v in caplog.text] == []
    for record in caplog.records:
        assert [v for v in values if v in repr(record.args)] == []

    # 4. files created in the system temp dir during the test
    assert data_dir.is_relative_to(_pytest_root(tmp_path_factory.getbasetemp()))
    for path in _new_temp_files(start, _pytest_root(tmp_path_factory.getbasetemp())):
        try:
            data = path.read_bytes()
        except OSError:
            continue
        assert _leaks_in_bytes(data, needles) == [], path

    # 5. every API answer
    for text in answers:
        assert [v for v in values if v in text] == []
