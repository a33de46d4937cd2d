"""End to end: the published file, the report, joinability, chunking and PII leaks."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from market.pipeline import MalformedFile, pseudonym, runner
from tests.pipeline.conftest import KEY
from tests.pipeline.factories import HEADER, rows, write_csv

#: Columns whose raw values are personal data and must never be persisted.
PII_COLUMNS = [
    "统一社会信用代码",
    "姓名",
    "身份证号",
    "出生日期",
    "手机号",
    "银行卡号",
    "电子邮箱",
    "住址",
]


def _data(n: int = 60, seed: int = 11) -> list[list[str]]:
    data = rows(n, seed=seed)
    for i, row in enumerate(data):
        row[-1] = f"请联系{row[6]}" if i % 3 == 0 else "无"  # a mobile inside the remarks
    return data


def test_report_and_output(tmp_path: Path, publish) -> None:
    source = write_csv(tmp_path / "social.csv", HEADER, _data())
    report, table = publish(
        source, entity_key="统一社会信用代码", update_frequency="monthly", key_unique=False
    )
    d = report.to_dict()
    json.dumps(d, ensure_ascii=False)  # JSON-serializable
    assert d["row_count"] == 60 and d["format"] == "csv" and d["encoding"] == "utf-8"
    assert set(d["quality"]["dimensions"]) == {
        "completeness",
        "validity",
        "accuracy",
        "uniqueness",
        "consistency",
        "timeliness",
    }
    assert 0 <= d["quality"]["score"] <= 100
    columns = {c["name"]: c for c in d["columns"]}
    assert columns["备注"]["pii_kind"] == "mobile" and columns["备注"]["embedded"]
    assert columns["备注"]["treatment"] == "masked"
    assert columns["出生日期"]["generalization"] == "month"
    assert columns["缴费基数"]["type"] == "decimal"
    assert columns["参保日期"]["type"] == "date"
    assert table.column_names == HEADER
    assert str(table.schema.field("缴费月数").type) == "int64"
    meta = json.loads(table.schema.metadata[b"market.pipeline"])
    assert {c["name"]: c["treatment"] for c in meta["columns"]}["身份证号"] == "pseudonymized"
    codes = table.column("统一社会信用代码").to_pylist()
    assert codes[0] == pseudonym(KEY, "credit_code", _data()[0][0])
    assert all(
        m.startswith("请联系1") and "****" in m for m in table.column("备注").to_pylist()[::3]
    )


def test_pseudonyms_join_across_files(tmp_path: Path, publish) -> None:
    data = _data(30)
    first = write_csv(tmp_path / "dept_a.csv", HEADER, data)
    # Another department: other column names, messier spelling, other rows.
    other = [
        [f" {r[0].lower()} ", r[3].lower(), f"{r[6][:3]}-{r[6][3:7]}-{r[6][7:]}"] for r in data[::2]
    ]
    second = write_csv(tmp_path / "dept_b.csv", ["信用代码", "法人身份证号", "联系电话"], other)
    _, a = publish(first)
    _, b = publish(second)
    a_rows = {r["身份证号"]: r for r in a.to_pylist()}
    for row in b.to_pylist():
        match = a_rows[row["法人身份证号"]]
        assert row["信用代码"] == match["统一社会信用代码"]
        assert row["联系电话"] == match["手机号"]
    _, again = publish(first)
    assert again.equals(a)  # deterministic


def test_chunking_does_not_change_the_result(tmp_path: Path, publish) -> None:
    source = write_csv(tmp_path / "chunks.csv", HEADER, _data(90))
    seen: list[tuple[int, int]] = []
    report_small, small = publish(
        source,
        chunk_rows=7,
        progress=lambda d, t: seen.append((d, t)),
        out_path=tmp_path / "small.parquet",
    )
    report_big, big = publish(source, chunk_rows=100_000, out_path=tmp_path / "big.parquet")
    assert small.equals(big)
    assert report_small.quality == report_big.quality
    assert pq.ParquetFile(tmp_path / "small.parquet").num_row_groups == 13
    assert seen[-1] == (source.stat().st_size, source.stat().st_size)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_the_entity_key_has_a_bloom_filter_per_row_group(tmp_path: Path, publish) -> None:
    import duckdb

    from market.consents.records import TableSpec, read_subject_rows

    source = write_csv(tmp_path / "bloom.csv", HEADER, _data(90))
    out = tmp_path / "bloom.parquet"
    _, table = publish(
        source, chunk_rows=10, out_path=out, entity_key="身份证号", key_unique=True
    )
    key = table.column("身份证号")[0].as_py()
    probe = duckdb.sql(
        "SELECT row_group_id, bloom_filter_excludes FROM parquet_bloom_probe(?, ?, ?) "
        "ORDER BY row_group_id",
        params=[str(out), "身份证号", key],
    ).fetchall()
    holds = {i // 10 for i, v in enumerate(table.column("身份证号").to_pylist()) if v == key}
    assert len(probe) == 9 and len(holds) == 1
    assert all(not excluded for group, excluded in probe if group in holds)
    assert any(excluded for group, excluded in probe if group not in holds)  # groups skipped
    absent = duckdb.sql(
        "SELECT bool_and(bloom_filter_excludes) FROM parquet_bloom_probe(?, ?, ?)",
        params=[str(out), "身份证号", "rid_not_there"],
    ).fetchall()
    assert absent == [(True,)]
    # a lookup still finds every row of the enterprise, in file order
    found = read_subject_rows(TableSpec("t", out, "身份证号", ("姓名",)), key, limit=100)
    want = [
        row["姓名"] for row in table.to_pylist() if row["身份证号"] == key
    ]
    assert [r["姓名"] for r in found.rows] == want and not found.truncated


def _raw_values(data: list[list[str]], columns: list[str] = PII_COLUMNS) -> set[str]:
    values = set()
    for row in data:
        for name, value in zip(HEADER, row, strict=False):
            if name in columns:
                values.add(value)
    # The mobiles inside the free text are also in the mobile column.
    return {v for v in values if len(v) >= 2}


#: Values unlikely to occur by chance in someone else's file: what the temp-dir scan looks for
#: (other processes write Chinese names and dates to /tmp too).
IDENTIFIER_COLUMNS = ["统一社会信用代码", "身份证号", "手机号", "银行卡号", "电子邮箱", "住址"]
_SKIP_DIRS = {".venv", ".git", "node_modules", "__pycache__"}


def _files(root: Path, skip: Path | None = None) -> set[Path]:
    out = set()
    for dirpath, dirnames, names in os.walk(root):
        dirnames[:] = [
            d
            for d in dirnames
            if d not in _SKIP_DIRS and Path(dirpath, d) != skip and not d.startswith("pytest-of-")
        ]
        out.update(Path(dirpath) / name for name in names)
    return out


def test_no_raw_pii_anywhere(
    tmp_path: Path, publish, caplog, monkeypatch, tmp_path_factory
) -> None:
    data = _data(80, seed=23)
    source = write_csv(tmp_path / "pii.csv", HEADER, data)
    # Uncompressed, so that a leak in the data pages would show in the bytes too.
    monkeypatch.setattr(runner, "COMPRESSION", "none")
    # Other tests' directories (their own PII test data) are skipped; ours is scanned below.
    # That is every pytest temp root: other xdist workers' and other concurrent runs' too.
    pytest_root = tmp_path_factory.getbasetemp()
    system_tmp = Path(tempfile.gettempdir())
    before = _files(system_tmp, pytest_root) | _files(Path.cwd(), pytest_root)
    caplog.set_level(logging.DEBUG)
    out_dir = tmp_path / "published"
    report, table = publish(source, out_path=out_dir / "pii.parquet", entity_key="身份证号")
    created = (_files(system_tmp, pytest_root) | _files(Path.cwd(), pytest_root)) - before
    assert [p.name for p in out_dir.iterdir()] == ["pii.parquet"]
    assert set(tmp_path.iterdir()) == {source, out_dir}

    def read(paths: set[Path]) -> dict[str, bytes]:
        return {str(p): p.read_bytes() for p in paths if p.is_file() and p.stat().st_size < 5e7}

    ours = read(set(out_dir.iterdir()))
    ours["cells"] = json.dumps(table.to_pylist(), ensure_ascii=False, default=str).encode()
    ours["report"] = json.dumps(report.to_dict(), ensure_ascii=False).encode()
    ours["logs"] = caplog.text.encode()
    leaks = [(w, v) for v in _raw_values(data) for w, blob in ours.items() if v.encode() in blob]
    elsewhere = read(created)
    identifiers = _raw_values(data, IDENTIFIER_COLUMNS)
    leaks += [(w, v) for v in identifiers for w, blob in elsewhere.items() if v.encode() in blob]
    assert leaks == []


def test_failures_leak_nothing_and_leave_nothing(tmp_path: Path, publish, caplog) -> None:
    data = _data(40, seed=29)
    data[25] = data[25] + ["extra"]
    source = write_csv(tmp_path / "bad.csv", HEADER, data)
    caplog.set_level(logging.DEBUG)
    out_dir = tmp_path / "published"
    with pytest.raises(MalformedFile) as err:
        publish(source, out_path=out_dir / "bad.parquet", chunk_rows=10)
    assert err.value.row == 27
    text = str(err.value) + repr(err.value.to_dict()) + caplog.text
    assert not [v for v in _raw_values(data) if v in text]
    assert list(out_dir.iterdir()) == []


def test_the_pipeline_runs_on_jemalloc_and_publishes_the_same_file(tmp_path):
    """`use_jemalloc` changes Arrow's allocator only: a file published before the switch and
    one published after it hold the same table."""
    import subprocess
    import sys

    script = (
        "import sys, pyarrow as pa, pyarrow.parquet as pq\n"
        "from market.pipeline import runner\n"
        "src, a, b = sys.argv[1:4]\n"
        "pa.set_memory_pool(pa.system_memory_pool())\n"
        "kw = dict(filename='x.csv', key=b'k' * 32, entity_key=None, update_frequency=None)\n"
        "runner._JEMALLOC = False\n"  # first run: as if already decided, keep the system pool
        "runner.run_pipeline(src, out_path=a, **kw)\n"
        "assert pa.default_memory_pool().backend_name == 'system'\n"
        "runner._JEMALLOC = None\n"  # second run: undecided, so run_pipeline switches
        "runner.run_pipeline(src, out_path=b, **kw)\n"
        "print(pa.default_memory_pool().backend_name)\n"
        "assert pq.read_table(a).equals(pq.read_table(b))\n"
    )
    src = tmp_path / "x.csv"
    rows = ["姓名,手机号,金额"] + [f"张{i},1380013{i:04d},{i}" for i in range(300)]
    src.write_text("\n".join(rows), encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-c", script, str(src), str(tmp_path / "a.parquet"),
         str(tmp_path / "b.parquet")],
        capture_output=True, text=True, check=True,
    )
    import pyarrow as pa

    try:
        pa.jemalloc_memory_pool()
        expected = "jemalloc"
    except NotImplementedError:
        # A pyarrow wheel built without jemalloc: use_jemalloc leaves the pool as it was,
        # here the system pool the script set.
        expected = "system"
    assert out.stdout.strip().splitlines()[-1] == expected
