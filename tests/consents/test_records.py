"""The pure reader: one enterprise's rows from a Parquet table, and the profile series."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest

from market.consents.errors import RecordsUnavailable
from market.consents.records import (
    TableRows,
    TableSpec,
    json_value,
    profile_series,
    read_subject_rows,
    read_subject_tables,
)


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "t.parquet"
    pd.DataFrame(
        {
            "k": ["ent_a", "ent_b", "ent_a", "ent_c", "ent_a"],
            "所属期": ["2025-01", "2025-01", "2025-02", "2025-01", "2025-03"],
            "amount": [Decimal("1.10"), Decimal("2"), Decimal("3.30"), Decimal("4"), None],
            "secret": ["x", "y", "z", "w", "v"],
        }
    ).to_parquet(path, index=False, row_group_size=2)
    return path


def test_reads_only_the_entity_and_the_columns_asked(table):
    spec = TableSpec("t", table, "k", ("所属期", "amount"))
    rows = read_subject_rows(spec, "ent_a")
    assert rows.columns == ("所属期", "amount") and not rows.truncated
    assert rows.rows == [
        {"所属期": "2025-01", "amount": "1.10"},
        {"所属期": "2025-02", "amount": "3.30"},
        {"所属期": "2025-03", "amount": None},
    ]
    assert read_subject_rows(spec, "ent_zzz").rows == []


def test_a_quote_in_the_key_is_just_a_value(table):
    spec = TableSpec("t", table, "k", ("secret",))
    assert read_subject_rows(spec, "ent_a' OR '1'='1").rows == []


def test_caps_rows_and_says_so(table):
    rows = read_subject_rows(TableSpec("t", table, "k", ("secret",)), "ent_a", limit=2)
    assert len(rows.rows) == 2 and rows.truncated
    exact = read_subject_rows(TableSpec("t", table, "k", ("secret",)), "ent_a", limit=3)
    assert len(exact.rows) == 3 and not exact.truncated


def test_columns_the_file_lacks_are_skipped(table):
    rows = read_subject_rows(TableSpec("t", table, "k", ("secret", "gone")), "ent_b")
    assert rows.columns == ("secret",) and rows.rows == [{"secret": "y"}]


@pytest.mark.parametrize(
    "spec_kw",
    [{"path_name": "missing.parquet"}, {"key": "not_a_column"}, {"garbage": True}],
)
def test_unreadable_tables_raise(tmp_path, table, spec_kw):
    path = table
    key = spec_kw.get("key", "k")
    if "path_name" in spec_kw:
        path = tmp_path / spec_kw["path_name"]
    if spec_kw.get("garbage"):
        path = tmp_path / "garbage.parquet"
        path.write_bytes(b"not parquet at all")
    with pytest.raises(RecordsUnavailable) as err:
        read_subject_rows(TableSpec("slug_x", path, key, ("secret",)), "ent_a")
    assert err.value.slug == "slug_x"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("12.50"), "12.50"),
        (dt.date(2025, 1, 31), "2025-01-31"),
        (dt.datetime(2025, 1, 31, 8, 0, tzinfo=dt.UTC), "2025-01-31T08:00:00+00:00"),
        (7, 7),
        (1.5, 1.5),
        (None, None),
        ("张*", "张*"),
        (True, True),
        (b"\x01\xff", "01ff"),
    ],
)
def test_json_values(value, expected):
    assert json_value(value) == expected


def test_profile_series_sums_per_period_across_tables():
    tax = TableRows(
        "tax",
        ("所属期", "纳税额(元)"),
        [
            {"所属期": "2025-02", "纳税额(元)": "10.10"},
            {"所属期": "2025-01", "纳税额(元)": "5.00"},
            {"所属期": "2025-02", "纳税额(元)": "0.20"},
            {"所属期": "2025-03", "纳税额(元)": None},
        ],
        False,
    )
    hrss = TableRows("hrss", ("所属期", "参保人数"), [{"所属期": "2025-03", "参保人数": 12}], False)
    other = TableRows("reg", ("企业名称",), [{"企业名称": "x"}], False)
    series = profile_series([other, tax, hrss])
    assert series == {
        "periods": ["2025-01", "2025-02", "2025-03"],
        "series": [
            {"key": "tax", "column": "纳税额(元)", "values": ["5.00", "10.30", None]},
            {"key": "headcount", "column": "参保人数", "values": [None, None, "12"]},
        ],
    }
    assert profile_series([other]) is None
    assert profile_series([]) is None


def test_one_connection_reads_every_table_of_a_lookup(tmp_path, table):
    first = TableSpec("t1", table, "k", ("secret",))
    second = TableSpec("t2", table, "k", ("所属期",))
    got = read_subject_tables([first, second], "ent_b")
    assert [(t.slug, t.rows) for t in got] == [
        ("t1", [{"secret": "y"}]),
        ("t2", [{"所属期": "2025-01"}]),
    ]
    assert read_subject_tables([], "ent_b") == []
    with pytest.raises(RecordsUnavailable) as err:
        read_subject_tables([first, TableSpec("gone", tmp_path / "gone.parquet", "k", ())], "x")
    assert err.value.slug == "gone"
