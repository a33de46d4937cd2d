"""#14.2 (XLSX zip bombs, DTDs), #14.6 (NUL bytes in cells), #14.9 (empty dataset folders)."""

from __future__ import annotations

import io
import zipfile

import pyarrow.parquet as pq
import pytest

from market.datasets.models import Dataset, DatasetVersion
from market.extensions import db
from market.pipeline.report import note_text
from tests.datasets.conftest import csv_bytes, metadata, sample_rows

HEADER = ["统一社会信用代码", "所属区"]
#: English whatever the branch's language negotiation (``?lang=`` always wins).
EN = "/api/v1/datasets?lang=en"


def _workbook(sheet_xml: bytes | None = None, *, rows: int = 0, dimension: str | None = None,
              prolog: bytes = b"") -> bytes:
    """A real workbook (openpyxl) whose first sheet is replaced: ``sheet_xml`` as is, or
    ``rows`` generated rows (streamed into the zip: the file stays small on disk)."""
    from openpyxl import Workbook

    from tests.datasets.conftest import uscc

    wb = Workbook()
    ws = wb.active
    ws.append(HEADER)
    ws.append([uscc(1), "浦东新区"])
    base = io.BytesIO()
    wb.save(base)
    out = io.BytesIO()
    with zipfile.ZipFile(base) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            if item.filename != "xl/worksheets/sheet1.xml":
                zout.writestr(item, zin.read(item.filename))
                continue
            with zout.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as fh:
                if sheet_xml is not None:
                    fh.write(sheet_xml)
                    continue
                fh.write(prolog + b'<worksheet xmlns="http://schemas.openxmlformats.org/'
                         b'spreadsheetml/2006/main">')
                if dimension:
                    fh.write(f'<dimension ref="{dimension}"/>'.encode())
                fh.write(f'<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>{HEADER[0]}</t>'
                         f'</is></c><c r="B1" t="inlineStr"><is><t>{HEADER[1]}</t></is></c>'
                         '</row>'.encode())
                row = b'<row><c t="inlineStr"><is><t>9131000000000000XX</t></is></c>' \
                      b'<c t="inlineStr"><is><t>AAAA</t></is></c></row>'
                block = row * 1000
                for _ in range(rows // 1000):
                    fh.write(block)
                fh.write(b"</sheetData></worksheet>")
    return out.getvalue()


@pytest.fixture
def bomb() -> bytes:
    """~24 MB of sheet XML in a file of well under 1 MB (the issue's was 6.8 MB → 2 GB)."""
    return _workbook(rows=200_000)


def test_the_bomb_is_small_on_disk_and_large_unpacked(bomb):
    with zipfile.ZipFile(io.BytesIO(bomb)) as z:
        unpacked = sum(i.file_size for i in z.infolist())
    assert len(bomb) < 1_000_000 and unpacked > 20_000_000


def test_an_xlsx_zip_bomb_is_refused_by_its_compression_ratio(upload, department, data_dir,
                                                              bomb):
    r = upload(department[1], bomb, "bomb.xlsx", url=EN)
    assert r.status_code == 413, r.get_json()
    body = r.get_json()
    assert "compressed" in body["message"] and "to 1" in body["message"]
    assert body["errors"]["limit"] == ["ratio"]
    assert db.session.query(Dataset).count() == 0
    assert [p for p in data_dir.rglob("*") if p.is_file()] == []


def test_an_xlsx_beyond_the_unpacked_size_cap_is_refused(app, upload, department, data_dir,
                                                         bomb, monkeypatch):
    monkeypatch.setitem(app.config, "MARKET_XLSX_MAX_RATIO", 100_000)
    monkeypatch.setitem(app.config, "MARKET_XLSX_MAX_UNPACKED_BYTES", 10 * 1024 * 1024)
    r = upload(department[1], bomb, "bomb.xlsx", url=EN)
    assert r.status_code == 413, r.get_json()
    assert "unpacks to" in r.get_json()["message"] and "10.0 MB" in r.get_json()["message"]
    assert r.get_json()["errors"]["limit"] == ["unpacked"]


@pytest.mark.parametrize(
    ("dimension", "expected", "limit"),
    [("A1:B2000000", "declares 2000000 rows", "rows"),
     ("A1:ZZ100000", "declares 70200000 cells", "cells")],
)
def test_a_sheet_declaring_too_many_rows_or_cells_is_refused_before_parsing(
        upload, department, data_dir, dimension, expected, limit):
    r = upload(department[1], _workbook(rows=1000, dimension=dimension), "big.xlsx", url=EN)
    assert r.status_code == 422, r.get_json()
    assert expected in r.get_json()["message"]
    assert r.get_json()["errors"]["limit"] == [limit]


def test_rows_are_also_counted_while_streaming(app, upload, department, data_dir, monkeypatch):
    """A sheet without a ``dimension`` (or a lying one) is stopped by counting."""
    monkeypatch.setitem(app.config, "MARKET_XLSX_MAX_ROWS", 1500)
    r = upload(department[1], _workbook(rows=3000), "undeclared.xlsx", url=EN)
    body = r.get_json()
    assert r.status_code == 202 and body["status"] == "failed", body  # the job counted
    assert "more than 1500 rows" in body["refusal_reasons"][0]
    assert [p for p in data_dir.rglob("*") if p.is_file()] == []


DTD = b'<?xml version="1.0"?><!DOCTYPE worksheet [<!ENTITY a "aaaaaaaaaa">]>'


def test_an_xlsx_with_a_dtd_is_refused_saying_so(upload, department, data_dir):
    r = upload(department[1], _workbook(rows=10, prolog=DTD), "dtd.xlsx", url=EN)
    assert r.status_code == 422, r.get_json()
    message = r.get_json()["message"]
    assert "document type declaration (DTD)" in message and "internal error" not in message


def test_the_job_also_names_the_dtd(tmp_path):
    """The reader refuses it too (a job started without the upload checks, e.g. the CLI)."""
    from market.pipeline import MalformedFile
    from market.pipeline.readers import open_source

    path = tmp_path / "dtd.xlsx"
    path.write_bytes(_workbook(rows=10, prolog=DTD))
    with pytest.raises(MalformedFile, match="DTD"):
        open_source(path, "dtd.xlsx", chunk_rows=100)


def test_a_dtd_refusal_is_translated(upload, department, data_dir, client):
    from tests.datasets.conftest import multipart

    body, content_type = multipart([
        ("metadata", __import__("json").dumps(metadata(), ensure_ascii=False)),
        ("file", (_workbook(rows=10, prolog=DTD), "dtd.xlsx")),
    ])
    r = client.post("/api/v1/datasets", data=body, content_type=content_type,
                    headers={**department[1], "Accept-Language": "zh"})
    assert r.status_code == 422
    assert "DTD" in r.get_json()["message"] and "文档类型" in r.get_json()["message"]


# ---------------------------------------------------------------------------- NUL bytes


def test_nul_bytes_in_cells_are_removed_and_reported(upload, department, data_dir):
    rows = sample_rows()
    for i, row in enumerate(rows):
        if i % 3 == 0:
            row["所属区"] = row["所属区"][:2] + "\x00" + row["所属区"][2:]
            row["行业"] = "\x00" + row["行业"]
    r = upload(department[1], csv_bytes(rows), "nul.csv")
    assert r.status_code == 202, r.get_json()
    assert r.get_json()["status"] == "pending_review", r.get_json()
    version = db.session.get(Dataset, r.get_json()["id"]).versions[-1]
    warnings = [note_text(w) for w in version.report["warnings"]]
    assert any("所属区" in w and "NUL bytes were removed from 20 values" in w for w in warnings)
    assert any("行业" in w and "NUL" in w for w in warnings)
    table = pq.read_table(data_dir / version.parquet_path)
    for name in table.column_names:
        values = table.column(name).to_pylist()
        assert not any(isinstance(v, str) and "\x00" in v for v in values), name
    for col in version.columns:
        assert "\x00" not in str(col.profile), col.name
    district = next(c for c in version.columns if c.name == "所属区")
    assert {t["value"] for t in district.profile["top"]} <= {"浦东新区", "徐汇区", "静安区",
                                                             "黄浦区"}


def test_a_nul_byte_in_a_header_is_removed_too(upload, department, data_dir):
    content = csv_bytes(sample_rows()).replace("行业".encode(), "行\x00业".encode(), 1)
    r = upload(department[1], content, "nul-header.csv")
    assert r.status_code == 202 and r.get_json()["status"] == "pending_review", r.get_json()
    version = db.session.get(DatasetVersion, db.session.get(Dataset, r.get_json()["id"])
                             .versions[-1].id)
    assert "行业" in [c.name for c in version.columns]
    assert any("NUL" in note_text(w) for w in version.report["warnings"])


# ---------------------------------------------------------------------------- folders


@pytest.mark.parametrize("content", [b"\xff\xfe\x00garbage", b"a,b\n1,2\n"])
def test_a_failed_upload_leaves_no_empty_dataset_folder(upload, department, data_dir, content):
    r = upload(department[1], content, "broken.csv")
    assert r.status_code == 202 and r.get_json()["status"] == "failed", r.get_json()
    assert not (data_dir / "datasets" / str(r.get_json()["id"])).exists()
    assert [p for p in data_dir.rglob("*") if p.is_file()] == []


def test_a_refused_upload_leaves_no_empty_dataset_folder(upload, department, data_dir):
    rows = sample_rows(6)
    r = upload(department[1], csv_bytes(rows), "tiny.csv", metadata(k_min=50))
    assert r.status_code == 202 and r.get_json()["status"] in ("refused", "failed"), r.get_json()
    assert not (data_dir / "datasets" / str(r.get_json()["id"])).exists()
