"""#13.10: a bad file cannot score "excellent".

The file of the report: 35% blank cells, 17% duplicate rows, 15% bad district names and 10%
negative balances. Accuracy (domain rules) catches the districts and the balances; the score
is capped near its weakest dimension; timeliness comes from the as-of date, not 成立日期.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pyarrow as pa
import pytest

from market.pipeline import domains
from market.pipeline.quality import WEAKEST_MARGIN
from tests.pipeline.factories import write_csv

NOW = dt.datetime(2025, 1, 15)
HEADER = ["企业编号", "所属区", "贷款余额", "成立日期", "备注"]


def _bad_file(tmp_path: Path, *, as_of: str | None = None) -> Path:
    rng = random.Random(3)
    rows = []
    for i in range(83):
        district = domains.SHANGHAI_DISTRICTS[i % 16]
        if i >= 68:  # 15 of the 100 rows: not divisions (made up, or abolished)
            district = ("浦西区", "闸北区", "南汇新区")[i % 3]
        balance = f"{rng.randint(100, 99999)}.00"
        if 58 <= i < 68:  # 10 of the 100 rows: negative balances
            balance = f"-{rng.randint(1, 999)}.50"
        founded = f"20{10 + i % 10}-0{1 + i % 9}-1{i % 9}"
        if i < 9 or 17 <= i < 17 + 57:
            founded = ""  # 9 (copied below, so 18) + 57 = 75 blank dates
        rows.append([f"E{i:04d}", district, balance, founded, ""])  # 备注 always blank
    # 17 duplicate rows, 100 in all; 100 + 75 of the 500 cells (35%) are blank.
    rows += [list(row) for row in rows[:17]]
    header = HEADER + (["统计日期"] if as_of else [])
    if as_of:
        rows = [[*row, as_of] for row in rows]
    return write_csv(tmp_path / "bad.csv", header, rows)


def test_the_bad_file_is_not_excellent(tmp_path: Path, publish) -> None:
    report, _ = publish(_bad_file(tmp_path), update_frequency="monthly", now=NOW)
    quality = report.quality
    dims = quality["dimensions"]
    checks = quality["details"]["accuracy_checks"]
    assert checks["district_in_division_list"] == {"made": 100, "passed": 100 - 15}
    assert checks["amount_non_negative"] == {"made": 100, "passed": 100 - 10}
    assert dims["accuracy"] is not None and dims["accuracy"] < 95
    per_column = quality["details"]["accuracy_columns"]
    assert per_column["所属区"] == {"made": 100, "passed": 85}
    # 成立日期 says nothing about freshness: with no as-of date, monthly freshness is unproven.
    assert quality["details"]["timeliness"]["reason"] == "no_as_of_date"
    assert dims["timeliness"] == 0.0
    assert dims["completeness"] == 65.0
    assert quality["details"]["duplicate_rows"]["share"] == 0.17
    assert quality["score"] < 75  # not excellent, not even good
    assert quality["score"] <= min(
        v for k, v in dims.items() if v is not None and k != "timeliness"
    ) + WEAKEST_MARGIN


def test_timeliness_reads_the_as_of_date(tmp_path: Path, publish) -> None:
    report, _ = publish(
        _bad_file(tmp_path, as_of="2025-01-10"), update_frequency="monthly", now=NOW
    )
    info = report.quality["details"]["timeliness"]
    assert info["latest_date"] == "2025-01-10" and info["source"] == "as_of_column"
    assert report.quality["dimensions"]["timeliness"] == 100.0
    # Fresh, but still far from excellent: capped near its weakest dimension.
    assert report.quality["score"] < 80


def test_dimensions_that_do_not_apply_are_none(tmp_path: Path, publish) -> None:
    source = write_csv(tmp_path / "plain.csv", ["说明"], [["甲"], ["乙"]])
    report, _ = publish(source, update_frequency=None, now=NOW)
    dims = report.quality["dimensions"]
    assert dims["accuracy"] is None and dims["timeliness"] is None
    assert dims["consistency"] is None
    assert dims["completeness"] == 100.0  # measured: every cell is filled


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["浦东新区", "上海市徐汇区", "浦西区", None], (3, 2)),
        (["闸北区", "静安区"], (2, 1)),  # former name: no longer a division
        (["朝阳区", "海淀区"], None),  # not Shanghai: not checked (no list shipped), not wrong
    ],
)
def test_district_rule(values, expected) -> None:
    got = domains.domain_checks("所属区", "string", pa.array(values, pa.string()), None)
    assert got.get("district_in_division_list") == expected


def test_amount_rule_only_where_declared() -> None:
    typed = pa.array([1, -2, 3, None], pa.int64())
    text = pa.array(["1", "-2", "3", None])
    assert domains.domain_checks("贷款余额", "integer", text, typed) == {
        "amount_non_negative": (3, 2)
    }
    assert domains.domain_checks("温度", "integer", text, typed) == {}


def test_shanghai_has_sixteen_districts() -> None:
    assert len(set(domains.SHANGHAI_DISTRICTS)) == 16
    assert all(code.startswith("3101") for code in domains.SHANGHAI_DISTRICT_CODES)


@pytest.mark.parametrize(
    ("periods", "expected"),
    [
        (["2024-11", "2024-12", None], "2024-12-31"),
        (["202410", "2024年9月"], "2024-10-31"),
        (["2025-01"], "2025-01-15"),  # the current month: no later than today
        (["上半年"], None),
    ],
)
def test_period_columns_give_the_as_of_date(periods, expected) -> None:
    got = domains.latest_period_end(pa.array(periods, pa.string()), NOW.date())
    assert (None if got is None else str(got)) == expected


def test_a_monthly_table_is_fresh_by_its_period(tmp_path: Path, publish) -> None:
    rows = [[f"E{i}", "2024-12", str(100 + i)] for i in range(10)]
    source = write_csv(tmp_path / "m.csv", ["企业编号", "所属期", "缴存人数"], rows)
    report, _ = publish(source, update_frequency="monthly", now=NOW)
    assert report.quality["details"]["timeliness"]["latest_date"] == "2024-12-31"
    assert report.quality["dimensions"]["timeliness"] == 100.0
