"""Formats, encodings and malformed files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from market.pipeline import EncodingError, MalformedFile, UnsupportedFormat
from market.pipeline.readers import detect_encoding
from market.pipeline.report import note_text
from tests.pipeline.factories import HEADER, rows, write_csv

ROWS = rows(40, seed=3)


@pytest.mark.parametrize(
    ("encoding", "reported"),
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("gbk", "gbk"), ("gb18030", "gbk")],
)
def test_encodings_detected_and_output_identical(
    tmp_path: Path, publish, encoding: str, reported: str
) -> None:
    source = write_csv(tmp_path / f"data-{encoding}.csv", HEADER, ROWS, encoding)
    report, table = publish(source)
    reference = write_csv(tmp_path / "reference.csv", HEADER, ROWS, "utf-8")
    _, expected = publish(reference)
    assert report.encoding == reported
    assert report.row_count == len(ROWS)
    assert table.equals(expected)
    assert table.column("单位名称").to_pylist()[0] == "上海测试0有限公司"


def test_gb18030_only_characters(tmp_path: Path, publish) -> None:
    # 𠀀 and 䶮 are outside GBK: only GB18030 encodes them.
    data = [["𠀀明", "上海"], ["龚䶮", "北京"]]
    source = write_csv(tmp_path / "rare.csv", ["名称", "城市"], data, "gb18030")
    report, table = publish(source)
    assert report.encoding == "gb18030"
    assert table.column("城市").to_pylist() == ["上海", "北京"]


def test_non_ascii_after_first_megabyte(tmp_path: Path) -> None:
    path = tmp_path / "late.csv"
    with open(path, "wb") as f:
        f.write(b"a,b\n" + b"1,2\n" * 300_000 + "上海,北京\n".encode("gbk"))
    assert detect_encoding(path) == ("gbk", "gb18030")


def test_utf16_refused(tmp_path: Path, publish) -> None:
    source = tmp_path / "u16.csv"
    source.write_text("a,b\n1,2\n", encoding="utf-16")
    with pytest.raises(EncodingError, match="UTF-16"):
        publish(source)


@pytest.mark.parametrize("lines", [5, 100_000])  # within the sniffed sample, and beyond it
def test_invalid_bytes_name_the_line(tmp_path: Path, publish, lines: int) -> None:
    source = tmp_path / "broken.csv"
    text = "姓名,城市\n" + "".join(f"张{i},上海\n" for i in range(lines))
    source.write_bytes(text.encode("utf-8") + b"\xff\xfe,bad\n")
    with pytest.raises(EncodingError) as err:
        publish(source, chunk_rows=50_000)
    assert err.value.row == lines + 2
    assert f"line {lines + 2}" in err.value.message
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_ragged_row_names_row_and_leaves_nothing(tmp_path: Path, publish) -> None:
    data = [list(r) for r in ROWS]
    data[29].append("extra")  # file row 31 (the header is row 1)
    source = write_csv(tmp_path / "ragged.csv", HEADER, data)
    out_dir = tmp_path / "out"
    with pytest.raises(MalformedFile) as err:
        publish(source, chunk_rows=8)
    assert err.value.row == 31
    assert "row 31" in err.value.message and "15 fields" in err.value.message
    for value in data[29]:
        assert value not in str(err.value)
    assert err.value.__context__ is None and err.value.__cause__ is None
    assert list(out_dir.iterdir()) == []


def test_unterminated_quote(tmp_path: Path, publish) -> None:
    source = tmp_path / "quote.csv"
    source.write_text('a,b\n1,2\n3,"open\n4,5\n', encoding="utf-8")
    with pytest.raises(MalformedFile) as err:
        publish(source)
    assert err.value.row is not None


def test_duplicate_header(tmp_path: Path, publish) -> None:
    source = write_csv(tmp_path / "dup.csv", ["a", "b", "a"], [["1", "2", "3"]])
    with pytest.raises(MalformedFile) as err:
        publish(source)
    assert err.value.column == "a" and err.value.row == 1


def test_blank_header_gets_a_name(tmp_path: Path, publish) -> None:
    source = write_csv(tmp_path / "blank.csv", ["a", ""], [["1", "x"], ["2", "y"]])
    report, table = publish(source)
    assert table.column_names == ["a", "column_2"]
    assert any("column 2 has no header" in w for w in map(note_text, report.warnings))


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("data.xls", b"\xd0\xcf\x11\xe0 old excel", UnsupportedFormat),
        ("data.json", b"{}", UnsupportedFormat),
        ("data.csv", b"PK\x03\x04 a zip", UnsupportedFormat),
        ("data.xlsx", b"a,b\n1,2\n", MalformedFile),
        ("data.parquet", b"PAR1 truncated", MalformedFile),
        ("data.csv", b"", MalformedFile),
    ],
)
def test_format_checks(tmp_path: Path, publish, name: str, content: bytes, error: type) -> None:
    source = tmp_path / name
    source.write_bytes(content)
    with pytest.raises(error):
        publish(source)


def test_header_only_file(tmp_path: Path, publish) -> None:
    source = write_csv(tmp_path / "empty.csv", ["a", "b"], [])
    with pytest.raises(Exception, match="no data rows"):
        publish(source)


def test_xlsx_input(tmp_path: Path, publish) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["手机号", "金额", "日期", "名称"])
    sheet.append([13812345678, 12.5, dt.datetime(2024, 1, 5), "甲"])
    sheet.append(["13912345678", 7, dt.datetime(2024, 2, 6, 8, 30), "乙"])
    sheet.append([None, None, None, None])  # blank rows are skipped
    sheet.append([13712345678, 3.25, dt.datetime(2024, 3, 7), "丙"])
    book.create_sheet("other")
    source = tmp_path / "book.xlsx"
    book.save(source)
    report, table = publish(source)
    types = {c.name: (c.pii_kind, c.type, c.treatment) for c in report.columns}
    assert report.format == "xlsx" and report.encoding is None and report.row_count == 3
    assert types["手机号"] == ("mobile", "string", "pseudonymized")
    assert types["金额"][1] == "decimal"
    assert types["日期"][1] == "datetime"
    assert table.column("名称").to_pylist() == ["甲", "乙", "丙"]
    assert [str(x) for x in table.column("金额").to_pylist()] == ["12.50", "7.00", "3.25"]
    assert any("first worksheet" in w for w in map(note_text, report.warnings))


def test_xlsx_value_beyond_header(tmp_path: Path, publish) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["a", "b"])
    sheet.append([1, 2])
    sheet.append([3, 4, "stray"])
    source = tmp_path / "stray.xlsx"
    book.save(source)
    with pytest.raises(MalformedFile) as err:
        publish(source)
    assert err.value.row == 3


def test_parquet_input_keeps_types(tmp_path: Path, publish) -> None:
    table = pa.table(
        {
            "身份证号": ["11010519491231002X", "110105491231003"],
            "金额": pa.array([1.5, 2.25]),
            "次数": pa.array([3, 4], pa.int32()),
            "日期": pa.array([dt.date(2024, 1, 1), dt.date(2024, 2, 1)]),
            "类别": pa.array(["甲", "乙"]).dictionary_encode(),
        }
    )
    source = tmp_path / "input.parquet"
    pq.write_table(table, source)
    report, out = publish(source)
    kinds_ = {c.name: (c.pii_kind, c.type) for c in report.columns}
    assert kinds_["身份证号"] == ("resident_id", "string")
    assert out.schema.field("次数").type == pa.int32()
    assert out.schema.field("日期").type == pa.date32()
    assert out.column("类别").to_pylist() == ["甲", "乙"]
    assert all(v.startswith("rid_") for v in out.column("身份证号").to_pylist())


def test_xlsx_duplicate_header_closes_the_workbook(tmp_path: Path, publish) -> None:
    book = openpyxl.Workbook()
    book.active.append(["a", "a"])
    book.active.append([1, 2])
    source = tmp_path / "dup.xlsx"
    book.save(source)
    with pytest.raises(MalformedFile) as err:  # an unclosed file would fail the test (warning)
        publish(source)
    assert err.value.column == "a"


def test_parquet_nested_column_refused(tmp_path: Path, publish) -> None:
    source = tmp_path / "nested.parquet"
    pq.write_table(pa.table({"a": [1], "tags": [["x", "y"]]}), source)
    with pytest.raises(UnsupportedFormat) as err:
        publish(source)
    assert err.value.column == "tags"


@pytest.mark.parametrize(
    ("values", "start", "expected_possible"),
    [
        (["abc", "def"], 0, False),
        (["abc", "d\x00f"], 0, True),
        (["abc", "def\x00"], 0, True),  # the last byte of the buffer
        (["\x00", "def"], 1, True),  # outside the slice: may be a false positive, never a miss
        ([None, None], 0, False),
        (["", None], 0, False),
    ],
)
def test_nul_prescan_never_misses(values: list, start: int, expected_possible: bool) -> None:
    from market.pipeline.readers import _may_hold_nul

    arr = pa.array(values, pa.string()).slice(start)
    assert _may_hold_nul(arr) is expected_possible
    if any(v is not None and "\x00" in v for v in arr.to_pylist()):
        assert _may_hold_nul(arr)


def test_nul_in_a_later_chunk_is_removed_and_counted(tmp_path: Path, publish) -> None:
    data = [list(r) for r in ROWS]
    name = HEADER.index("姓名")
    data[-1][name] = data[-1][name][:1] + "\x00" + data[-1][name][1:]
    source = write_csv(tmp_path / "nul.csv", HEADER, data, "utf-8")
    report, table = publish(source, chunk_rows=7)
    assert any("NUL bytes were removed from 1 values" in note_text(w) for w in report.warnings)
    for name in table.column_names:
        assert not any(isinstance(v, str) and "\x00" in v for v in table.column(name).to_pylist())
